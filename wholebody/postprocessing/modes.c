/* PPI in C for one part: candidates and people by proposal-box IoU (SPEC 5, steps 1-2), the mode
   search and mode means over every group (steps 3-4); compiled on first use by
   wholebody/postprocessing/compiled.py; proposals.py's numpy code does the same where no C
   compiler is at hand, with the same decisions.

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
#define MIN_JOINT_MAJOR 64 /* smaller groups stay member-major: their copy would cost more than it saves */

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

#define BOX_SLACK 2.0 /* pixels (plus 1e-5 of the coordinates) by which the box sweep overreaches: as proposals.py's */
#define AHEAD 2 /* members ahead whose rows are prefetched: scattered rows of 84-joint faces wait on memory */

/* Asks for the `bytes` bytes at p to be brought into cache. */
static inline void prefetch(const void *p, int64_t bytes) {
    for (int64_t c = 0; c < bytes; c += 64) __builtin_prefetch((const char *)p + c);
}

/* The k poses at rows `rows` of pose3d (rows, J, 3) into T, joint-major (3 planes of J rows of k
   members), TILE members at a time (their rows stay in cache while the planes are written). */
static void transpose(const float *pose3d, const int64_t *rows, int64_t k, int J, float *T) {
    const float *src[TILE];
    for (int64_t a = 0; a < k; a += TILE) {
        const int64_t m = k - a < TILE ? k - a : TILE;
        for (int64_t i = 0; i < m; i++) src[i] = pose3d + rows[a + i] * 3 * J;
        for (int64_t i = a + TILE; i < k && i < a + 2 * TILE; i++) prefetch(pose3d + rows[i] * 3 * J, 12 * J);
        for (int j = 0; j < J; j++)
            for (int c = 0; c < 3; c++) {
                float *out = T + (int64_t)(c * J + j) * k + a;
                for (int64_t i = 0; i < m; i++) out[i] = src[i][3 * j + c];
            }
    }
}

/* Adds a member's weighted poses p2 (J, 2) and p3 (J, 3) to a mode's sums (float64): sums[0:2J]
   and sums[2J:5J] with weight wi, and where legs are weighed apart (leg_joints > 0) the first
   leg_joints joints' into sums[5J:...] and sums[7J:...] with weight li; w and wl: the weights' sums. */
static inline void add_member(double *sums, double *w, double *wl, const float *p2, const float *p3, double wi,
                              double li, int J, int leg_joints) {
    double *s2 = sums, *s3 = sums + 2 * J, *l2 = sums + 5 * J, *l3 = sums + 7 * J;
    *w += wi;
    for (int c = 0; c < 2 * J; c++) s2[c] += wi * p2[c];
    for (int c = 0; c < 3 * J; c++) s3[c] += wi * p3[c];
    if (leg_joints > 0) {
        *wl += li;
        for (int c = 0; c < 2 * leg_joints; c++) l2[c] += li * p2[c];
        for (int c = 0; c < 3 * leg_joints; c++) l3[c] += li * p3[c];
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
        /* the first mode's sums are made while its distances are: it is most often the best */
        int64_t first = -1;
        double w = 0, wl = 0;
        const int lj = legs ? leg_joints : 0;
        memset(sums, 0, sizeof(double) * (size_t)(10 * J));
        for (int has_mode = 0;; has_mode = 1) {
            int64_t r = -1;
            for (int64_t i = 0; i < k; i++)
                if (unassigned[i] && (r < 0 || sg[i] > sg[r])) r = i;
            if (r < 0 || (has_mode && sg[r] < min_mode_score)) break;
            const float *q = pose3d + rows[r] * 3 * J;
            if (has_mode && !joint_major && k >= MIN_JOINT_MAJOR) { /* a second mode: more may follow */
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
            else if (has_mode)
                for (int64_t i = 0; i < k; i++) dist[i] = mean_joint_distance(pose3d + rows[i] * 3 * J, q, J);
            else {
                first = r;
                for (int64_t i = 0; i < k; i++) {
                    const float *p3 = pose3d + rows[i] * 3 * J;
                    if (i + AHEAD < k) {
                        prefetch(pose3d + rows[i + AHEAD] * 3 * J, 12 * J);
                        prefetch(pose2d + rows[i + AHEAD] * 2 * J, 8 * J);
                    }
                    dist[i] = mean_joint_distance(p3, q, J);
                    if (i == r || dist[i] < th) /* in the mode, as decided below */
                        add_member(sums, &w, &wl, pose2d + rows[i] * 2 * J, p3, sg[i], lj ? legs[a + i] : 0, J, lj);
                }
            }
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

        if (leader_of_best != first) { /* another mode is the best: its sums */
            w = wl = 0;
            memset(sums, 0, sizeof(double) * (size_t)(10 * J));
            for (int64_t i = 0; i < k; i++) {
                if (i + AHEAD < k && member[i + AHEAD]) {
                    prefetch(pose3d + rows[i + AHEAD] * 3 * J, 12 * J);
                    prefetch(pose2d + rows[i + AHEAD] * 2 * J, 8 * J);
                }
                if (member[i])
                    add_member(sums, &w, &wl, pose2d + rows[i] * 2 * J, pose3d + rows[i] * 3 * J, sg[i],
                               lj ? legs[a + i] : 0, J, lj);
            }
        }
        const double *s2 = sums, *s3 = sums + 2 * J, *l2 = sums + 5 * J, *l3 = sums + 7 * J;
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

/* Proposal-box IoU of boxes r and c (x1, y1, x2, y2) above th, with the +1 pixel convention, in
   float32 operations in the order of proposals.py's _iou_plus1 (finite boxes: their min and max
   are numpy's); th32: compare in float32 (th rounded to it), else in float64, as numpy would. */
static int box_overlap(const float *r, const float *c, double th, int th32) {
    float iw = r[2] < c[2] ? r[2] : c[2];
    iw -= r[0] > c[0] ? r[0] : c[0];
    iw += 1.0f;
    float ih = r[3] < c[3] ? r[3] : c[3];
    ih -= r[1] > c[1] ? r[1] : c[1];
    ih += 1.0f;
    float inter = iw < 0.0f ? 0.0f : iw;
    inter *= ih < 0.0f ? 0.0f : ih;
    const float area_r = (r[2] - r[0] + 1.0f) * (r[3] - r[1] + 1.0f);
    const float area_c = (c[2] - c[0] + 1.0f) * (c[3] - c[1] + 1.0f);
    float uni = area_r + area_c;
    uni -= inter;
    const float iou = inter / uni;
    return th32 ? iou > (float)th : (double)iou > th;
}

typedef struct {
    float best;
    int64_t index;
} ranked;

/* The float's bits as an unsigned key in the float's order (-0 as +0: numpy's sort finds them equal). */
static inline uint32_t float_key(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (u == 0x80000000u) u = 0;
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* Sorts a (n) by `best`, increasing (or decreasing), ties in their order in a: the stable sort
   numpy's argsort(kind="stable") makes, as an LSD radix sort of three 11-bit digits. tmp: n more. */
static void sort_ranked(ranked *a, ranked *tmp, int64_t n, int decreasing) {
    uint32_t *key = malloc(sizeof(uint32_t) * (size_t)(2 * n + 1)), *key2 = key + n;
    int64_t *count = malloc(sizeof(int64_t) * 2048);
    if (!key || !count) { /* out of memory: insertion sort, the same order */
        for (int64_t i = 1; i < n; i++) {
            const ranked x = a[i];
            int64_t j = i;
            while (j > 0 && (decreasing ? a[j - 1].best < x.best : a[j - 1].best > x.best)) a[j] = a[j - 1], j--;
            a[j] = x;
        }
        free(key), free(count);
        return;
    }
    for (int64_t i = 0; i < n; i++) key[i] = decreasing ? ~float_key(a[i].best) : float_key(a[i].best);
    ranked *src = a, *dst = tmp;
    for (int shift = 0; shift < 33; shift += 11) {
        memset(count, 0, sizeof(int64_t) * 2048);
        for (int64_t i = 0; i < n; i++) count[(key[i] >> shift) & 2047]++;
        for (int64_t d = 0, sum = 0; d < 2048; d++) {
            const int64_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) {
            const int64_t at = count[(key[i] >> shift) & 2047]++;
            dst[at] = src[i];
            key2[at] = key[i];
        }
        ranked *r = src;
        src = dst, dst = r;
        uint32_t *k = key;
        key = key2, key2 = k;
    }
    if (src != a) memcpy(a, src, sizeof(ranked) * (size_t)n);
    free(key < key2 ? key : key2);
    free(count);
}

/* PPI's candidates and people for box overlaps (SPEC 5, steps 1-2), as proposals.py's numpy code
   finds them: candidate (n, a) when scores[n, 1 + a] >= score_th (th32: compared in float32, else
   float64); proposals ranked by their best candidate (ties: lower index); in that order each
   proposal not yet grouped leads a group that takes every proposal not yet grouped whose box's IoU
   with its own is above th_iou (>= 0); a proposal's candidates join its group.
   scores (N, A + 1), boxes (N, 4). Out: flat (C,) each candidate's row n * A + a, s (C,) its score,
   the candidates by group (candidate order within a group); starts (G + 1,) where each group
   begins, then C (room for N + 1). Returns C, and G in *n_groups; -1 when memory runs out.
   Boxes with a coordinate that is not finite overlap no other box (their IoU is 0 or NaN): each
   leads a group of its own. The others are swept by x1: a box is compared with the boxes whose x
   extent can meet its own (with 2 px and a relative 1e-5 of slack; the exact IoU decides). */
int64_t ppi_box_people(const float *scores, int64_t N, int64_t A, double score_th, int th32,
                       const float *boxes, double th_iou, int iou32,
                       int64_t *flat, float *s, int64_t *starts, int64_t *n_groups) {
    const float th_s = (float)score_th;
    int32_t *count = calloc((size_t)N + 1, sizeof(int32_t)); /* candidates per proposal */
    int64_t *label = malloc(sizeof(int64_t) * (size_t)(N + 1));
    ranked *rank = malloc(sizeof(ranked) * (size_t)(N + 1)), *sweep = malloc(sizeof(ranked) * (size_t)(N + 1));
    ranked *order = malloc(sizeof(ranked) * (size_t)(N + 1)); /* room for the sorts */
    int64_t *where = malloc(sizeof(int64_t) * (size_t)(N + 1)); /* each proposal's place in the sweep */
    if (!count || !label || !rank || !sweep || !where || !order) {
        free(count), free(label), free(rank), free(sweep), free(where), free(order);
        return -1;
    }
    int64_t P = 0, total = 0, finite = 0;
    double max_width = 0, max_abs = 0;
    for (int64_t n = 0; n < N; n++) {
        const float *row = scores + n * (A + 1) + 1;
        float best = 0;
        int32_t c = 0;
        for (int64_t a = 0; a < A; a++) {
            const int in = th32 ? row[a] >= th_s : (double)row[a] >= score_th;
            if (in && (c == 0 || row[a] > best)) best = row[a];
            c += in;
        }
        count[n] = c;
        label[n] = -1;
        if (!c) continue;
        total += c;
        rank[P].best = best;
        rank[P++].index = n;
        const float *b = boxes + 4 * n;
        if (isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3])) {
            sweep[finite].best = b[0];
            sweep[finite++].index = n;
            if ((double)b[2] - b[0] > max_width) max_width = (double)b[2] - b[0];
            if (fabs(b[0]) > max_abs) max_abs = fabs(b[0]);
            if (fabs(b[2]) > max_abs) max_abs = fabs(b[2]);
        }
    }
    sort_ranked(rank, order, P, 1);
    sort_ranked(sweep, order, finite, 0);
    for (int64_t n = 0; n < N; n++) where[n] = -1;
    for (int64_t i = 0; i < finite; i++) where[sweep[i].index] = i;
    int64_t groups = 0;
    for (int64_t o = 0; o < P; o++) {
        const int64_t head = rank[o].index;
        if (label[head] >= 0) continue;
        label[head] = groups;
        if (where[head] >= 0) {
            const float *h = boxes + 4 * head;
            const double slack = 1.0 + BOX_SLACK + 1e-5 * (fabs(h[0]) + fabs(h[2]) + max_abs); /* the +1 too */
            const double lo = (double)h[0] - slack - max_width, hi = (double)h[2] + slack;
            int64_t i = where[head]; /* back to the first x1 >= lo, then on while x1 <= hi */
            while (i > 0 && (double)sweep[i - 1].best >= lo) i--;
            for (; i < finite && (double)sweep[i].best <= hi; i++) {
                const int64_t j = sweep[i].index;
                if (label[j] < 0 && box_overlap(h, boxes + 4 * j, th_iou, iou32)) label[j] = groups;
            }
        }
        groups++;
    }
    for (int64_t g = 0; g <= groups; g++) starts[g] = 0;
    for (int64_t n = 0; n < N; n++)
        if (count[n]) starts[label[n] + 1] += count[n];
    for (int64_t g = 0; g < groups; g++) starts[g + 1] += starts[g];
    for (int64_t g = 0; g < groups; g++) where[g] = starts[g]; /* the next free place in each group */
    for (int64_t n = 0; n < N; n++) {
        if (!count[n]) continue;
        const float *row = scores + n * (A + 1) + 1;
        int64_t *at = where + label[n];
        for (int64_t a = 0; a < A; a++)
            if (th32 ? row[a] >= th_s : (double)row[a] >= score_th) {
                flat[*at] = n * A + a;
                s[(*at)++] = row[a];
            }
    }
    *n_groups = groups;
    free(count), free(label), free(rank), free(sweep), free(where), free(order);
    return total;
}
