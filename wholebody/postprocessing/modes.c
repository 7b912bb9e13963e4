/* PPI's mode search and mode means over every group of one part (SPEC 5, steps 3-4), compiled on
   first use by wholebody/postprocessing/compiled.py; proposals.py's numpy code does the same where
   no C compiler is at hand.

   The distance test decides as numpy's float32 formula does, to the bit:
       np.sqrt(((p - q) ** 2).sum(-1)).mean(-1) < th
   per joint (dx*dx + dy*dy) + dz*dz in float32 and its square root; the joints summed in the order
   of numpy's pairwise sum over a contiguous axis of at most 128 items (fewer than 8 one after the
   other; else 8 running sums over items t, t+8, ..., combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)),
   then the J % 8 others one by one); divided by J and compared, in float32. It is built with
   -ffp-contract=off and without -ffast-math, so each operation is the IEEE float32 operation numpy
   performs (vector instructions included). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JOINTS 128
#define CHUNK 256 /* members per pass of the joint-major distances: their 8 running sums stay in L1 */
#define TILE 8    /* members per tile of the transpose */

/* Mean joint distance of the pose p (J, 3) to the pose q (J, 3). */
static float mean_joint_distance(const float *restrict p, const float *restrict q, int J) {
    float d[MAX_JOINTS];
    for (int j = 0; j < J; j++) {
        const float dx = p[3 * j] - q[3 * j], dy = p[3 * j + 1] - q[3 * j + 1], dz = p[3 * j + 2] - q[3 * j + 2];
        d[j] = sqrtf((dx * dx + dy * dy) + dz * dz);
    }
    float sum;
    int j;
    if (J < 8) {
        sum = d[0];
        j = 1;
    } else {
        float r[8];
        for (int t = 0; t < 8; t++) r[t] = d[t];
        for (j = 8; j < J - J % 8; j += 8)
            for (int t = 0; t < 8; t++) r[t] += d[j + t];
        sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    }
    for (; j < J; j++) sum += d[j];
    return sum / (float)J;
}

/* The same for members laid out joint-major (`transpose`), CHUNK members at a time, the running
   sums of all of them kept side by side: every loop runs over members, as vector instructions. */
static inline void joint_set(const float *x, const float *y, const float *z, const float *q, int64_t m, float *out) {
    for (int64_t i = 0; i < m; i++) {
        const float dx = x[i] - q[0], dy = y[i] - q[1], dz = z[i] - q[2];
        out[i] = sqrtf((dx * dx + dy * dy) + dz * dz);
    }
}

static inline void joint_add(const float *x, const float *y, const float *z, const float *q, int64_t m, float *out) {
    for (int64_t i = 0; i < m; i++) {
        const float dx = x[i] - q[0], dy = y[i] - q[1], dz = z[i] - q[2];
        out[i] += sqrtf((dx * dx + dy * dy) + dz * dz);
    }
}

/* Mean joint distances of the k members of T (3 planes, x y z, of J rows of k members) to the
   pose q (J, 3) -> out (k,). acc: 8 * CHUNK floats. */
static void joint_major_distances(const float *T, int64_t k, int J, const float *q, float *acc, float *out) {
    const int64_t plane = (int64_t)J * k;
    for (int64_t a = 0; a < k; a += CHUNK) {
        const int64_t m = k - a < CHUNK ? k - a : CHUNK;
        const float *x = T + a, *y = x + plane, *z = y + plane;
        float *res = out + a;
#define JOINT(op, j, dst) op(x + (int64_t)(j) * k, y + (int64_t)(j) * k, z + (int64_t)(j) * k, q + 3 * (j), m, dst)
        if (J < 8) {
            JOINT(joint_set, 0, res);
            for (int j = 1; j < J; j++) JOINT(joint_add, j, res);
        } else {
            const int n8 = J - J % 8;
            for (int t = 0; t < 8; t++) JOINT(joint_set, t, acc + t * CHUNK);
            for (int j = 8; j < n8; j += 8)
                for (int t = 0; t < 8; t++) JOINT(joint_add, j + t, acc + t * CHUNK);
            const float *r0 = acc, *r1 = r0 + CHUNK, *r2 = r1 + CHUNK, *r3 = r2 + CHUNK,
                        *r4 = r3 + CHUNK, *r5 = r4 + CHUNK, *r6 = r5 + CHUNK, *r7 = r6 + CHUNK;
            for (int64_t i = 0; i < m; i++)
                res[i] = ((r0[i] + r1[i]) + (r2[i] + r3[i])) + ((r4[i] + r5[i]) + (r6[i] + r7[i]));
            for (int j = n8; j < J; j++) JOINT(joint_add, j, res);
        }
#undef JOINT
        const float count = (float)J;
        for (int64_t i = 0; i < m; i++) res[i] /= count;
    }
}

/* The k poses at rows `rows` of pose3d (rows, J, 3) into T, joint-major (3 planes of J rows of k
   members), TILE members at a time (their rows stay in cache while the planes are written). */
static void transpose(const float *pose3d, const int64_t *rows, int64_t k, int J, float *T) {
    const float *src[TILE];
    for (int64_t a = 0; a < k; a += TILE) {
        const int64_t m = k - a < TILE ? k - a : TILE;
        for (int64_t i = 0; i < m; i++) src[i] = pose3d + rows[a + i] * 3 * J;
        for (int j = 0; j < J; j++)
            for (int c = 0; c < 3; c++) {
                float *out = T + (int64_t)(c * J + j) * k + a;
                for (int64_t i = 0; i < m; i++) out[i] = src[i][3 * j + c];
            }
    }
}

/* Every group's best mode and its weighted mean poses.

   pose3d (rows, J, 3) and pose2d (rows, J, 2): the part's poses as they lie; flat (C,): each
   candidate's row, the candidates sorted by group (candidate order within a group); s (C,): their
   scores; legs (C,) or NULL: bodies' weights for the first leg_joints joints (the scores, those of
   upper-body anchor poses scaled down); starts (G + 1,): where each group begins, then C.
   th, min_mode_score: PPI's th_pose3D and min_mode_score, in float32.
   In each group, modes are found from the highest-scoring unassigned member r (ties: the first);
   a mode is r and every member, assigned or not, whose distance to r is below th; its score, the
   members' scores summed in float64 in candidate order; the search stops when no member is
   unassigned, or when r scores below min_mode_score and a mode exists.
   Out: top (G,) the candidate leading each group's best mode (the first of equal scores), best (G,)
   its score, mean2d (G, J, 2) and mean3d (G, J, 3) its members' score-weighted mean poses, summed
   in float64 (bodies: the legs with the leg weights).
   Returns 0; -1 when memory runs out or J > MAX_JOINTS (the outputs are then undefined). */
int ppi_best_modes(const float *pose3d, const float *pose2d, const int64_t *flat, const float *s,
                   const float *legs, int leg_joints, const int64_t *starts, int64_t G, int J,
                   float th, float min_mode_score,
                   int64_t *top, double *best, float *mean2d, float *mean3d) {
    if (J < 1 || J > MAX_JOINTS || leg_joints < 0 || leg_joints > J) return -1;
    int64_t kmax = 0;
    for (int64_t g = 0; g < G; g++)
        if (starts[g + 1] - starts[g] > kmax) kmax = starts[g + 1] - starts[g];
    uint8_t *flags = malloc((size_t)(3 * kmax + 1));
    double *sums = malloc(sizeof(double) * (size_t)(10 * J));
    float *dist = malloc(sizeof(float) * (size_t)(kmax + 8 * CHUNK)), *acc = dist + kmax;
    float *T = NULL; /* joint-major copy of a group, made when its search goes on past one mode */
    if (!flags || !sums || !dist) {
        free(flags);
        free(sums);
        free(dist);
        return -1;
    }
    uint8_t *unassigned = flags, *in_mode = flags + kmax, *member = flags + 2 * kmax;

    for (int64_t g = 0; g < G; g++) {
        const int64_t a = starts[g], k = starts[g + 1] - a;
        const int64_t *rows = flat + a;
        const float *sg = s + a;
        memset(unassigned, 1, (size_t)k);
        double top_score = -INFINITY;
        int64_t leader_of_best = -1;
        int joint_major = 0;
        for (int has_mode = 0;; has_mode = 1) {
            int64_t r = -1;
            for (int64_t i = 0; i < k; i++)
                if (unassigned[i] && (r < 0 || sg[i] > sg[r])) r = i;
            if (r < 0 || (has_mode && sg[r] < min_mode_score)) break;
            const float *q = pose3d + rows[r] * 3 * J;
            if (has_mode && !joint_major) { /* a second mode: more may follow, worth the copy */
                if (!T && !(T = malloc(sizeof(float) * (size_t)(3 * J * kmax)))) {
                    free(flags);
                    free(sums);
                    free(dist);
                    return -1;
                }
                transpose(pose3d, rows, k, J, T);
                joint_major = 1;
            }
            if (joint_major)
                joint_major_distances(T, k, J, q, acc, dist);
            else
                for (int64_t i = 0; i < k; i++) dist[i] = mean_joint_distance(pose3d + rows[i] * 3 * J, q, J);
            double score = 0;
            for (int64_t i = 0; i < k; i++) {
                const int in = i == r || dist[i] < th;
                in_mode[i] = (uint8_t)in;
                if (in) {
                    score += (double)sg[i];
                    unassigned[i] = 0;
                }
            }
            if (score > top_score) {
                top_score = score;
                leader_of_best = r;
                memcpy(member, in_mode, (size_t)k);
            }
        }
        top[g] = a + leader_of_best;
        best[g] = top_score;

        double *s2 = sums, *s3 = sums + 2 * J, *l2 = sums + 5 * J, *l3 = sums + 7 * J;
        double w = 0, wl = 0;
        memset(sums, 0, sizeof(double) * (size_t)(10 * J));
        for (int64_t i = 0; i < k; i++) {
            if (!member[i]) continue;
            const float *p2 = pose2d + rows[i] * 2 * J, *p3 = pose3d + rows[i] * 3 * J;
            const double wi = sg[i];
            w += wi;
            for (int c = 0; c < 2 * J; c++) s2[c] += wi * p2[c];
            for (int c = 0; c < 3 * J; c++) s3[c] += wi * p3[c];
            if (legs) {
                const double li = legs[a + i];
                wl += li;
                for (int c = 0; c < 2 * leg_joints; c++) l2[c] += li * p2[c];
                for (int c = 0; c < 3 * leg_joints; c++) l3[c] += li * p3[c];
            }
        }
        float *m2 = mean2d + g * 2 * J, *m3 = mean3d + g * 3 * J;
        for (int c = 0; c < 2 * J; c++) m2[c] = (float)(s2[c] / w);
        for (int c = 0; c < 3 * J; c++) m3[c] = (float)(s3[c] / w);
        if (legs) {
            for (int c = 0; c < 2 * leg_joints; c++) m2[c] = (float)(l2[c] / wl);
            for (int c = 0; c < 3 * leg_joints; c++) m3[c] = (float)(l3[c] / wl);
        }
    }
    free(flags);
    free(sums);
    free(dist);
    free(T);
    return 0;
}

/* PPI's people for box overlaps (SPEC 5, step 2) as a greedy cover: in `order`, each item not yet
   grouped leads a new group, which takes every item not yet grouped among its neighbours
   (item i's neighbours: neighbours[bounds[i]:bounds[i + 1]]). label (n,): each item's group,
   numbered in creation order. Returns the number of groups. */
int64_t ppi_greedy_cover(int64_t n, const int64_t *order, const int64_t *bounds, const int64_t *neighbours,
                         int64_t *label) {
    for (int64_t i = 0; i < n; i++) label[i] = -1;
    int64_t groups = 0;
    for (int64_t o = 0; o < n; o++) {
        const int64_t head = order[o];
        if (label[head] >= 0) continue;
        label[head] = groups;
        for (int64_t e = bounds[head]; e < bounds[head + 1]; e++)
            if (label[neighbours[e]] < 0) label[neighbours[e]] = groups;
        groups++;
    }
    return groups;
}
