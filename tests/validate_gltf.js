// The Khronos glTF validator on one file: `node validate_gltf.js FILE.glb` prints its issues as JSON
// ({"numErrors": ..., "numWarnings": ..., "messages": [...]}). NODE_PATH must hold gltf-validator.
const fs = require("fs");
const validator = require("gltf-validator");
const data = new Uint8Array(fs.readFileSync(process.argv[2]));
validator.validateBytes(data, {maxIssues: 200}).then(
  (report) => { console.log(JSON.stringify(report.issues)); },
  (error) => { console.error(String(error)); process.exit(2); });
