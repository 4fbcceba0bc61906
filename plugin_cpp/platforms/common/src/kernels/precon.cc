/* The device precon kernels (PreconStage's iteration, PreconStage.h), in OpenMM's common kernel language,
 * compiled after projection.cc. Vectors over the movable atoms (g, the trial gradient, the
 * direction d, the memory's s and y, scratch) have 3 entries per movable atom in particle order (3 a + c, a =
 * movable[j] for particle j, -1 for a fixed particle or virtual site), P's order; x (the iterate) has 3 per
 * particle by original index (order[i] of posq row i), so both survive OpenMM's atom reordering. The forces are
 * the projected forces by posq row. Sums and maxima go to partial (slot k of NUM_BLOCKS per work group) and
 * are finished by finishReduction. Offsets select a slot of the memory arrays (OpenCL has no pointer offsets). */
/* The block's sums of value[0 .. count) into partial[k * NUM_BLOCKS + GROUP_ID] (max for k >= numSums). */
DEVICE void blockReduce(LOCAL_ARG volatile mixed* scratch, mixed* value, int numSums, int count,
                        GLOBAL mixed* RESTRICT partial) {
    for (int k = 0; k < count; k++) {
        scratch[LOCAL_ID] = value[k];
        SYNC_THREADS;
        for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
            if (LOCAL_ID < step)
                scratch[LOCAL_ID] = (k < numSums ? scratch[LOCAL_ID] + scratch[LOCAL_ID + step]
                                                 : max(scratch[LOCAL_ID], scratch[LOCAL_ID + step]));
            SYNC_THREADS;
        }
        if (LOCAL_ID == 0)
            partial[k * NUM_BLOCKS + GROUP_ID] = scratch[0];
        SYNC_THREADS;
    }
}

/* One work group: results[offset + k] = the sum (k < numSums) or maximum of partial slot k. */
KERNEL void finishReduction(GLOBAL const mixed* RESTRICT partial, GLOBAL mixed* RESTRICT results, int offset,
                            int numSums, int numMaxes) {
    LOCAL volatile mixed scratch[THREAD_BLOCK_SIZE];
    for (int k = 0; k < numSums + numMaxes; k++) {
        mixed value = 0;
        for (int i = LOCAL_ID; i < NUM_BLOCKS; i += LOCAL_SIZE)
            value = (k < numSums ? value + partial[k * NUM_BLOCKS + i] : max(value, partial[k * NUM_BLOCKS + i]));
        scratch[LOCAL_ID] = value;
        SYNC_THREADS;
        for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
            if (LOCAL_ID < step)
                scratch[LOCAL_ID] = (k < numSums ? scratch[LOCAL_ID] + scratch[LOCAL_ID + step]
                                                 : max(scratch[LOCAL_ID], scratch[LOCAL_ID + step]));
            SYNC_THREADS;
        }
        if (LOCAL_ID == 0)
            results[offset + k] = scratch[0];
        SYNC_THREADS;
    }
}

/* partial slot 0: a[aOffset ..] . b[bOffset ..] over the NUM_COORDS movable coordinates. */
KERNEL void dotPartial(GLOBAL const mixed* RESTRICT a, int aOffset, GLOBAL const mixed* RESTRICT b, int bOffset,
                       GLOBAL mixed* RESTRICT partial) {
    LOCAL volatile mixed scratch[THREAD_BLOCK_SIZE];
    mixed sum[1] = {0};
    for (int i = GLOBAL_ID; i < NUM_COORDS; i += GLOBAL_SIZE)
        sum[0] += a[aOffset + i] * b[bOffset + i];
    blockReduce(scratch, sum, 1, 1, partial);
}

/* trialGradient = -forces of the movable atoms; partial slot 0: its squared norm. */
KERNEL void trialGradient(GLOBAL const mixed* RESTRICT forces, GLOBAL const int* RESTRICT order,
                          GLOBAL const int* RESTRICT movable, GLOBAL mixed* RESTRICT gradient,
                          GLOBAL mixed* RESTRICT partial) {
    LOCAL volatile mixed scratch[THREAD_BLOCK_SIZE];
    mixed sum[1] = {0};
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        int a = movable[order[i]];
        if (a < 0)
            continue;
        for (int c = 0; c < 3; c++) {
            mixed g = -forces[3 * i + c];
            gradient[3 * a + c] = g;
            sum[0] += g * g;
        }
    }
    blockReduce(scratch, sum, 1, 1, partial);
}

/* partial slots 0, 1: g . d (the slope) and max_atom |d_atom|^2. */
KERNEL void lineSearchStats(GLOBAL const mixed* RESTRICT g, GLOBAL const mixed* RESTRICT d,
                            GLOBAL mixed* RESTRICT partial) {
    LOCAL volatile mixed scratch[THREAD_BLOCK_SIZE];
    mixed value[2] = {0, 0};
    for (int a = GLOBAL_ID; a < NUM_MOVABLE; a += GLOBAL_SIZE) {
        mixed row = 0;
        for (int c = 0; c < 3; c++) {
            value[0] += g[3 * a + c] * d[3 * a + c];
            row += d[3 * a + c] * d[3 * a + c];
        }
        value[1] = max(value[1], row);
    }
    blockReduce(scratch, value, 1, 2, partial);
}

/* posq = x + alpha d for the movable atoms, x for the others (x as the periodic image nearest posq; alpha = 0
   puts the iterate back). */
KERNEL void moveTrial(GLOBAL real4* RESTRICT posq, GLOBAL real4* RESTRICT correction,
                      GLOBAL const int* RESTRICT order, GLOBAL const int* RESTRICT movable,
                      GLOBAL const mixed* RESTRICT x, GLOBAL const mixed* RESTRICT d, mixed alpha,
                      int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC) {
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        int j = order[i], a = movable[j];
        mixed3 p = loadPosition(posq, correction, i);
        mixed3 raw = make_mixed3(x[3 * j] - p.x, x[3 * j + 1] - p.y, x[3 * j + 2] - p.z);
        mixed3 near = minimumImage(raw, periodic, boxA, boxB, boxC);
        mixed3 base = make_mixed3(x[3 * j] - (raw.x - near.x), x[3 * j + 1] - (raw.y - near.y),
                                  x[3 * j + 2] - (raw.z - near.z));  /* x itself without a box */
        if (a >= 0)
            base = make_mixed3(base.x + alpha * d[3 * a], base.y + alpha * d[3 * a + 1], base.z + alpha * d[3 * a + 2]);
        storePosition(posq, correction, i, base);
    }
}

/* The accepted trial (in posq, trialGradient): s = x' - x, y = g' - g into the memory slot at offset, then
   x = x', g = g'; partial slots 0, 1, 2: s.y, s.s, y.y. */
KERNEL void acceptTrial(GLOBAL const real4* RESTRICT posq, GLOBAL const real4* RESTRICT correction,
                        GLOBAL const int* RESTRICT order, GLOBAL const int* RESTRICT movable,
                        GLOBAL mixed* RESTRICT x, GLOBAL mixed* RESTRICT g, GLOBAL const mixed* RESTRICT trialGradient,
                        GLOBAL mixed* RESTRICT s, GLOBAL mixed* RESTRICT y, int offset, GLOBAL mixed* RESTRICT partial,
                        int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC) {
    LOCAL volatile mixed scratch[THREAD_BLOCK_SIZE];
    mixed value[3] = {0, 0, 0};
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        int j = order[i], a = movable[j];
        mixed3 p = loadPosition(posq, correction, i);
        if (a >= 0) {
            mixed3 step = minimumImage(make_mixed3(p.x - x[3 * j], p.y - x[3 * j + 1], p.z - x[3 * j + 2]),
                                       periodic, boxA, boxB, boxC);
            mixed sa[3] = {step.x, step.y, step.z};
            for (int c = 0; c < 3; c++) {
                mixed ya = trialGradient[3 * a + c] - g[3 * a + c];
                s[offset + 3 * a + c] = sa[c];
                y[offset + 3 * a + c] = ya;
                g[3 * a + c] = trialGradient[3 * a + c];
                value[0] += sa[c] * ya;
                value[1] += sa[c] * sa[c];
                value[2] += ya * ya;
            }
        }
        x[3 * j] = p.x;
        x[3 * j + 1] = p.y;
        x[3 * j + 2] = p.z;
    }
    blockReduce(scratch, value, 3, 3, partial);
}

/* The start: x = posq, g = trialGradient. */
KERNEL void acceptStart(GLOBAL const real4* RESTRICT posq, GLOBAL const real4* RESTRICT correction,
                        GLOBAL const int* RESTRICT order, GLOBAL mixed* RESTRICT x, GLOBAL mixed* RESTRICT g,
                        GLOBAL const mixed* RESTRICT trialGradient) {
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        mixed3 p = loadPosition(posq, correction, i);
        int j = order[i];
        x[3 * j] = p.x;
        x[3 * j + 1] = p.y;
        x[3 * j + 2] = p.z;
    }
    for (int i = GLOBAL_ID; i < NUM_COORDS; i += GLOBAL_SIZE)
        g[i] = trialGradient[i];
}

/* dst = src[offset ..] over the movable coordinates. */
KERNEL void copyVector(GLOBAL mixed* RESTRICT dst, GLOBAL const mixed* RESTRICT src, int offset) {
    for (int i = GLOBAL_ID; i < NUM_COORDS; i += GLOBAL_SIZE)
        dst[i] = src[offset + i];
}

/* The first loop's update: a = rho (s.q) (coefficients[index]), q -= a y. */
KERNEL void firstLoopUpdate(GLOBAL mixed* RESTRICT q, GLOBAL const mixed* RESTRICT y, int offset,
                            GLOBAL const mixed* RESTRICT coefficients, int index, mixed rho) {
    mixed a = rho * coefficients[index];
    for (int i = GLOBAL_ID; i < NUM_COORDS; i += GLOBAL_SIZE)
        q[i] -= a * y[offset + i];
}

/* H0's scale: z *= numerator / max(coefficients[index], TINY) (gamma = s.y / y.P^-1 y). */
KERNEL void scaleDirection(GLOBAL mixed* RESTRICT z, GLOBAL const mixed* RESTRICT coefficients, int index,
                           mixed numerator) {
    mixed scale = numerator / max(coefficients[index], (mixed) TINY);
    for (int i = GLOBAL_ID; i < NUM_COORDS; i += GLOBAL_SIZE)
        z[i] *= scale;
}

/* The second loop's update: b = a - rho (y.z) (coefficients[alphaIndex], [dotIndex]), z += s b. */
KERNEL void secondLoopUpdate(GLOBAL mixed* RESTRICT z, GLOBAL const mixed* RESTRICT s, int offset,
                             GLOBAL const mixed* RESTRICT coefficients, int alphaIndex, int dotIndex, mixed rho) {
    mixed b = rho * coefficients[alphaIndex] - rho * coefficients[dotIndex];
    for (int i = GLOBAL_ID; i < NUM_COORDS; i += GLOBAL_SIZE)
        z[i] += s[offset + i] * b;
}

KERNEL void negateVector(GLOBAL mixed* RESTRICT z) {
    for (int i = GLOBAL_ID; i < NUM_COORDS; i += GLOBAL_SIZE)
        z[i] = -z[i];
}

/* v = P^-1 v with P = L D L^T in envelope storage (PreconMatrix::solve, the same arithmetic): one work item
   per Cartesian component, serial over the rows (its cost is the envelope's size). */
KERNEL void envelopeSolve(GLOBAL mixed* RESTRICT v, GLOBAL const int* RESTRICT first, GLOBAL const int* RESTRICT start,
                          GLOBAL const mixed* RESTRICT lower, GLOBAL const mixed* RESTRICT diagonal) {
    int c = GLOBAL_ID;
    if (c >= 3)
        return;
    for (int i = 0; i < NUM_MOVABLE; i++) {
        mixed value = v[3 * i + c];
        for (int j = first[i]; j < i; j++)
            value -= lower[start[i] + j - first[i]] * v[3 * j + c];
        v[3 * i + c] = value;
    }
    for (int i = 0; i < NUM_MOVABLE; i++)
        v[3 * i + c] /= diagonal[i];
    for (int i = NUM_MOVABLE - 1; i >= 0; i--) {
        mixed value = v[3 * i + c];
        for (int j = first[i]; j < i; j++)
            v[3 * j + c] -= lower[start[i] + j - first[i]] * value;
    }
}

/* v = P^-1 v for a diagonal P (P = mu I, or no coupled atoms): a division per coordinate. */
KERNEL void diagonalSolve(GLOBAL mixed* RESTRICT v, GLOBAL const mixed* RESTRICT diagonal) {
    for (int i = GLOBAL_ID; i < NUM_COORDS; i += GLOBAL_SIZE)
        v[i] /= diagonal[i / 3];
}

/* anchor[3 k ..] = x of coupled particle k (P was built here). */
KERNEL void setAnchor(GLOBAL const mixed* RESTRICT x, GLOBAL const int* RESTRICT coupled,
                      GLOBAL mixed* RESTRICT anchor, int numCoupled) {
    for (int k = GLOBAL_ID; k < numCoupled; k += GLOBAL_SIZE)
        for (int c = 0; c < 3; c++)
            anchor[3 * k + c] = x[3 * coupled[k] + c];
}

/* partial slot 0: max over the coupled particles of |x - anchor|^2. */
KERNEL void anchorDistance(GLOBAL const mixed* RESTRICT x, GLOBAL const int* RESTRICT coupled,
                           GLOBAL const mixed* RESTRICT anchor, int numCoupled, GLOBAL mixed* RESTRICT partial,
                           int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC) {
    LOCAL volatile mixed scratch[THREAD_BLOCK_SIZE];
    mixed value[1] = {0};
    for (int k = GLOBAL_ID; k < numCoupled; k += GLOBAL_SIZE) {
        int j = coupled[k];
        mixed3 d = minimumImage(make_mixed3(x[3 * j] - anchor[3 * k], x[3 * j + 1] - anchor[3 * k + 1],
                                            x[3 * j + 2] - anchor[3 * k + 2]), periodic, boxA, boxB, boxC);
        value[0] = max(value[0], d.x * d.x + d.y * d.y + d.z * d.z);
    }
    blockReduce(scratch, value, 0, 1, partial);
}
