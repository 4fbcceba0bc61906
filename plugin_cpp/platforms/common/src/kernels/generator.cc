/* The generator kernels of a reparametrized device stage (DeviceGeneratorKernels), in OpenMM's common kernel
 * language, compiled after projection.cc and adam.cc (adamGradient). Matrices are
 * row-major mixed arrays addressed as (array, offset): the generator's parameters are one flat array in the
 * host generator's order, and the GNN's layers, its readout and their gradients are products of small dense
 * blocks (reduceRows: A^T B over the rows, one work group per entry; rowsTimes: A B or A B^T, one work item per
 * entry), so one set of kernels serves both kinds. rows[atom] is the generator row of a particle, -1 for one
 * that moves as plain coordinates. */
/* The rows at offset[r] + scale * (y[r] + bias), each stored as the image nearest its current position (OpenMM
   may have shifted its molecule by a box vector); massless particles stay (virtual sites follow their atoms).
   linear: offset = X0, y = V z, bias 0; gnn: offset = center + residual, y = [H_0|...|H_L] W_out, bias b_out. */
KERNEL void placeRows(GLOBAL real4* RESTRICT posq, GLOBAL real4* RESTRICT correction,
                      GLOBAL const mixed4* RESTRICT velm, GLOBAL const int* RESTRICT order,
                      GLOBAL const int* RESTRICT rows, GLOBAL const mixed* RESTRICT offset,
                      GLOBAL const mixed* RESTRICT y, GLOBAL const mixed* RESTRICT bias, int biasOffset, mixed scale,
                      int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC) {
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        int r = rows[order[i]];
        if (r < 0 || velm[i].w == 0)
            continue;
        mixed tx = offset[3 * r] + scale * (y[3 * r] + bias[biasOffset]);
        mixed ty = offset[3 * r + 1] + scale * (y[3 * r + 1] + bias[biasOffset + 1]);
        mixed tz = offset[3 * r + 2] + scale * (y[3 * r + 2] + bias[biasOffset + 2]);
        mixed3 x = loadPosition(posq, correction, i);
        mixed3 d = minimumImage(make_mixed3(tx - x.x, ty - x.y, tz - x.z), periodic, boxA, boxB, boxC);
        storePosition(posq, correction, i, make_mixed3(x.x + d.x, x.y + d.y, x.z + d.z));
    }
}

/* dy[3 r + k] = scale * the stage's gradient of row r's particle (adamGradient: -F projected, plus the spring);
   0 for a massless one (the host's EnergyBridge gives fixed particles no gradient). */
KERNEL void rowGradient(GLOBAL mixed* RESTRICT dy, GLOBAL const mixed* RESTRICT forces,
                        GLOBAL const real4* RESTRICT posq, GLOBAL const real4* RESTRICT correction,
                        GLOBAL const mixed4* RESTRICT velm, GLOBAL const int* RESTRICT order,
                        GLOBAL const mixed* RESTRICT candidate, GLOBAL const int* RESTRICT rows, mixed scale,
                        mixed stiffness, int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC) {
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        int r = rows[order[i]];
        if (r < 0)
            continue;
        mixed3 g = make_mixed3(0, 0, 0);
        if (velm[i].w != 0)
            g = adamGradient(forces, posq, correction, order, candidate, stiffness, i, periodic, boxA, boxB, boxC);
        dy[3 * r] = scale * g.x;
        dy[3 * r + 1] = scale * g.y;
        dy[3 * r + 2] = scale * g.z;
    }
}

/* out[o + i b + j] = sum over the ROWS rows r of left[l + r ls + i] right[q + r rs + j], i < a, j < b (ls = 0
   with a one-element array of 1: column sums). One work group per entry. */
KERNEL void reduceRows(GLOBAL mixed* RESTRICT out, int o, GLOBAL const mixed* RESTRICT left, int l, int ls,
                       GLOBAL const mixed* RESTRICT right, int q, int rs, int a, int b) {
    LOCAL volatile mixed sums[REDUCE_BLOCK_SIZE];
    for (int entry = GROUP_ID; entry < a * b; entry += GLOBAL_SIZE / LOCAL_SIZE) {
        int i = entry / b, j = entry - i * b;
        mixed sum = 0;
        for (int r = LOCAL_ID; r < ROWS; r += LOCAL_SIZE)
            sum += left[l + r * ls + i] * right[q + r * rs + j];
        sums[LOCAL_ID] = sum;
        SYNC_THREADS;
        for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
            if (LOCAL_ID < step)
                sums[LOCAL_ID] += sums[LOCAL_ID + step];
            SYNC_THREADS;
        }
        if (LOCAL_ID == 0)
            out[o + entry] = sums[0];
        SYNC_THREADS;
    }
}

/* out[o + r b + j] (accumulate: +=) sum_i left[l + r a + i] right[q + i b + j] (transposed: right[q + j a + i]),
   for the ROWS rows r and j < b. */
KERNEL void rowsTimes(GLOBAL mixed* RESTRICT out, int o, GLOBAL const mixed* RESTRICT left, int l, int a,
                      GLOBAL const mixed* RESTRICT right, int q, int b, int transposed, int accumulate) {
    for (int entry = GLOBAL_ID; entry < ROWS * b; entry += GLOBAL_SIZE) {
        int r = entry / b, j = entry - r * b;
        mixed sum = 0;
        for (int i = 0; i < a; i++)
            sum += left[l + r * a + i] * right[transposed ? q + j * a + i : q + i * b + j];
        out[o + entry] = accumulate ? out[o + entry] + sum : sum;
    }
}

/* h = tanh(h + bias) per entry (a GNN layer's pre-activation P W + H S, then its bias and tanh). */
KERNEL void addBiasTanh(GLOBAL mixed* RESTRICT h, int o, GLOBAL const mixed* RESTRICT bias, int q) {
    for (int entry = GLOBAL_ID; entry < ROWS * HIDDEN; entry += GLOBAL_SIZE)
        h[o + entry] = tanh(h[o + entry] + bias[q + entry % HIDDEN]);
}

/* d = dh * (1 - h^2) per entry (back through tanh). */
KERNEL void tanhBack(GLOBAL mixed* RESTRICT d, GLOBAL const mixed* RESTRICT dh, int dhOffset,
                     GLOBAL const mixed* RESTRICT h, int o) {
    for (int entry = GLOBAL_ID; entry < ROWS * HIDDEN; entry += GLOBAL_SIZE) {
        mixed value = h[o + entry];
        d[entry] = dh[dhOffset + entry] * (1 - value * value);
    }
}
