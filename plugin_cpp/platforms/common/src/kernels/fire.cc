/* The device FIRE kernels (runFireStage's iteration, FireStage.h), in OpenMM's common kernel language, compiled
 * after projection.cc. Velocities, the last step, the half step back and the accepted positions
 * are indexed by original atom (order[i] of posq row i); the forces are the projected forces by posq row.
 * Movable atoms: massive ones (velm.w != 0); every movable atom has mass 1 in FIRE. */
/* Per work group over the movable rows: F.F, F.v and v.v (reduceBuffer: 3 blocks of NUM_BLOCKS). */
KERNEL void fireStats(GLOBAL const mixed* RESTRICT forces, GLOBAL const mixed* RESTRICT v,
                      GLOBAL const mixed4* RESTRICT velm, GLOBAL const int* RESTRICT order,
                      GLOBAL mixed* RESTRICT reduceBuffer) {
    LOCAL volatile mixed ff[THREAD_BLOCK_SIZE];
    LOCAL volatile mixed fv[THREAD_BLOCK_SIZE];
    LOCAL volatile mixed vv[THREAD_BLOCK_SIZE];
    mixed a = 0, b = 0, c = 0;
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        if (velm[i].w == 0)
            continue;
        int o = 3 * order[i];
        for (int k = 0; k < 3; k++) {
            mixed f = forces[3 * i + k], u = v[o + k];
            a += f * f;
            b += f * u;
            c += u * u;
        }
    }
    ff[LOCAL_ID] = a;
    fv[LOCAL_ID] = b;
    vv[LOCAL_ID] = c;
    SYNC_THREADS;
    for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
        if (LOCAL_ID < step) {
            ff[LOCAL_ID] += ff[LOCAL_ID + step];
            fv[LOCAL_ID] += fv[LOCAL_ID + step];
            vv[LOCAL_ID] += vv[LOCAL_ID + step];
        }
        SYNC_THREADS;
    }
    if (LOCAL_ID == 0) {
        reduceBuffer[GROUP_ID] = ff[0];
        reduceBuffer[GROUP_ID + NUM_BLOCKS] = fv[0];
        reduceBuffer[GROUP_ID + 2 * NUM_BLOCKS] = vv[0];
    }
}

/* One work group: stats[0..2] = the sums of the blocks; with maxOnly, stats[3] = the largest of block 0's values. */
KERNEL void fireFinish(GLOBAL const mixed* RESTRICT reduceBuffer, GLOBAL mixed* RESTRICT stats, int maxOnly) {
    LOCAL volatile mixed values[THREAD_BLOCK_SIZE];
    for (int part = 0; part < (maxOnly ? 1 : 3); part++) {
        mixed sum = 0;
        for (int i = LOCAL_ID; i < NUM_BLOCKS; i += LOCAL_SIZE)
            sum = maxOnly ? max(sum, reduceBuffer[i]) : sum + reduceBuffer[i + part * NUM_BLOCKS];
        values[LOCAL_ID] = sum;
        SYNC_THREADS;
        for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
            if (LOCAL_ID < step)
                values[LOCAL_ID] = maxOnly ? max(values[LOCAL_ID], values[LOCAL_ID + step])
                                           : values[LOCAL_ID] + values[LOCAL_ID + step];
            SYNC_THREADS;
        }
        if (LOCAL_ID == 0)
            stats[maxOnly ? 3 : part] = values[0];
        SYNC_THREADS;
    }
}

/* Step 2's reset: B = -D/2, v = 0 (all atoms; the arrays are zero on fixed ones). */
KERNEL void fireReset(GLOBAL mixed* RESTRICT v, GLOBAL mixed* RESTRICT back, GLOBAL const mixed* RESTRICT lastStep) {
    for (int i = GLOBAL_ID; i < 3 * NUM_ATOMS; i += GLOBAL_SIZE) {
        back[i] = lastStep[i] * (mixed) -0.5;
        v[i] = 0;
    }
}

/* Steps 3-4: v += dt F; v = (1 - alpha) v + mix F; D = dt v (in lastStep); per work group the largest |D|^2. */
KERNEL void fireVelocity(GLOBAL const mixed* RESTRICT forces, GLOBAL mixed* RESTRICT v, GLOBAL mixed* RESTRICT lastStep,
                         GLOBAL const mixed4* RESTRICT velm, GLOBAL const int* RESTRICT order,
                         GLOBAL mixed* RESTRICT reduceBuffer, mixed dt, int mixing, mixed keep, mixed mix) {
    LOCAL volatile mixed peaks[THREAD_BLOCK_SIZE];
    mixed peak = 0;
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        if (velm[i].w == 0)
            continue;
        int o = 3 * order[i];
        mixed length2 = 0;
        for (int k = 0; k < 3; k++) {
            mixed f = forces[3 * i + k];
            mixed u = v[o + k] + f * dt;
            if (mixing)
                u = u * keep + f * mix;
            v[o + k] = u;
            mixed d = u * dt;
            lastStep[o + k] = d;
            length2 += d * d;
        }
        peak = max(peak, length2);
    }
    peaks[LOCAL_ID] = peak;
    SYNC_THREADS;
    for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
        if (LOCAL_ID < step)
            peaks[LOCAL_ID] = max(peaks[LOCAL_ID], peaks[LOCAL_ID + step]);
        SYNC_THREADS;
    }
    if (LOCAL_ID == 0)
        reduceBuffer[GROUP_ID] = peaks[0];
}

/* Step 5's move: D scaled so that no atom moves farther than maxStep (the largest |D|^2 in stats[3]); accepted
   = x; posq = (x + B) + D; B = 0. */
KERNEL void fireMove(GLOBAL real4* RESTRICT posq, GLOBAL real4* RESTRICT correction, GLOBAL const mixed4* RESTRICT velm,
                     GLOBAL const int* RESTRICT order, GLOBAL mixed* RESTRICT lastStep, GLOBAL mixed* RESTRICT back,
                     GLOBAL mixed* RESTRICT accepted, GLOBAL const mixed* RESTRICT stats, mixed maxStep) {
    mixed longest = sqrt(stats[3]);
    int scale = longest > maxStep;
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        int o = 3 * order[i];
        mixed3 x = loadPosition(posq, correction, i);
        accepted[o] = x.x;
        accepted[o + 1] = x.y;
        accepted[o + 2] = x.z;
        if (velm[i].w == 0)
            continue;
        mixed t[3] = {x.x + back[o], x.y + back[o + 1], x.z + back[o + 2]};
        for (int k = 0; k < 3; k++) {
            if (scale)
                lastStep[o + k] *= maxStep / longest;
            t[k] += lastStep[o + k];
            back[o + k] = 0;
        }
        storePosition(posq, correction, i, make_mixed3(t[0], t[1], t[2]));
    }
}
