/* The device Adam kernels, in OpenMM's common kernel language (KERNEL, GLOBAL, mixed, real4, ...): compiled by
 * ComputeContext::compileProgram for CUDA, OpenCL or HIP. Arrays indexed by atom (moments, best) use the
 * original atom order (order[i] of posq row i), so they survive OpenMM's atom reordering. */
#ifndef OPENMM_REPARAM_DEVICE_ADAM_KERNEL_SOURCE_H_
#define OPENMM_REPARAM_DEVICE_ADAM_KERNEL_SOURCE_H_
static const char* deviceAdamKernelSource = R"KERNELS(
#define FORCE_SCALE ((mixed) 1 / (mixed) 0x100000000)

DEVICE mixed3 loadPosition(GLOBAL const real4* RESTRICT posq, GLOBAL const real4* RESTRICT correction, int i) {
    real4 p = posq[i];
#ifdef USE_MIXED_PRECISION
    real4 c = correction[i];
    return make_mixed3(p.x + (mixed) c.x, p.y + (mixed) c.y, p.z + (mixed) c.z);
#else
    return make_mixed3(p.x, p.y, p.z);
#endif
}

DEVICE void storePosition(GLOBAL real4* RESTRICT posq, GLOBAL real4* RESTRICT correction, int i, mixed3 x) {
    posq[i].x = (real) x.x;
    posq[i].y = (real) x.y;
    posq[i].z = (real) x.z;
#ifdef USE_MIXED_PRECISION
    correction[i].x = (real) (x.x - (real) x.x);
    correction[i].y = (real) (x.y - (real) x.y);
    correction[i].z = (real) (x.z - (real) x.z);
#endif
}

/* The forces as accelerations in velm (F / m; zero for massless particles), for OpenMM's velocity constraints
   to project them onto the constraints' tangent space (mass-weighted). */
KERNEL void forcesToVelocities(GLOBAL mixed4* RESTRICT velm, GLOBAL const mm_long* RESTRICT force) {
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        mixed w = velm[i].w;
        velm[i].x = w * FORCE_SCALE * force[i];
        velm[i].y = w * FORCE_SCALE * force[i + PADDED_NUM_ATOMS];
        velm[i].z = w * FORCE_SCALE * force[i + 2 * PADDED_NUM_ATOMS];
    }
}

/* The projected force of atom i (from the projected acceleration in velm). */
DEVICE mixed3 projectedForce(GLOBAL const mixed4* RESTRICT velm, int i) {
    mixed4 a = velm[i];
    return make_mixed3(a.x / a.w, a.y / a.w, a.z / a.w);
}

/* Per work group: the sum of squared projected force components and the largest squared atomic projected force
   of the movable (massive) atoms. */
KERNEL void gradientStats(GLOBAL const mixed4* RESTRICT velm, GLOBAL mixed* RESTRICT reduceBuffer) {
    LOCAL volatile mixed sums[THREAD_BLOCK_SIZE];
    LOCAL volatile mixed peaks[THREAD_BLOCK_SIZE];
    mixed sum = 0, peak = 0;
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        if (velm[i].w == 0)
            continue;
        mixed3 f = projectedForce(velm, i);
        mixed f2 = f.x * f.x + f.y * f.y + f.z * f.z;
        sum += f2;
        peak = max(peak, f2);
    }
    sums[LOCAL_ID] = sum;
    peaks[LOCAL_ID] = peak;
    SYNC_THREADS;
    for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
        if (LOCAL_ID < step) {
            sums[LOCAL_ID] += sums[LOCAL_ID + step];
            peaks[LOCAL_ID] = max(peaks[LOCAL_ID], peaks[LOCAL_ID + step]);
        }
        SYNC_THREADS;
    }
    if (LOCAL_ID == 0) {
        reduceBuffer[GROUP_ID] = sums[0];
        reduceBuffer[GROUP_ID + NUM_BLOCKS] = peaks[0];
    }
}

/* One work group: stats = {sum of squares, largest squared atomic force}. */
KERNEL void finishStats(GLOBAL const mixed* RESTRICT reduceBuffer, GLOBAL mixed* RESTRICT stats) {
    LOCAL volatile mixed sums[THREAD_BLOCK_SIZE];
    LOCAL volatile mixed peaks[THREAD_BLOCK_SIZE];
    mixed sum = 0, peak = 0;
    for (int i = LOCAL_ID; i < NUM_BLOCKS; i += LOCAL_SIZE) {
        sum += reduceBuffer[i];
        peak = max(peak, reduceBuffer[i + NUM_BLOCKS]);
    }
    sums[LOCAL_ID] = sum;
    peaks[LOCAL_ID] = peak;
    SYNC_THREADS;
    for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
        if (LOCAL_ID < step) {
            sums[LOCAL_ID] += sums[LOCAL_ID + step];
            peaks[LOCAL_ID] = max(peaks[LOCAL_ID], peaks[LOCAL_ID + step]);
        }
        SYNC_THREADS;
    }
    if (LOCAL_ID == 0) {
        stats[0] = sums[0];
        stats[1] = peaks[0];
    }
}

/* torch.optim.Adam on the coordinates (gradient = -projected force), after clip_grad_norm_ to clipNorm. */
KERNEL void adamUpdate(GLOBAL real4* RESTRICT posq, GLOBAL real4* RESTRICT correction,
                       GLOBAL const mixed4* RESTRICT velm, GLOBAL const int* RESTRICT order, GLOBAL mixed* RESTRICT m, GLOBAL mixed* RESTRICT v,
                       GLOBAL const mixed* RESTRICT stats, GLOBAL const mixed* RESTRICT candidate,
                       mixed lr, mixed beta1, mixed beta2, mixed eps,
                       mixed biasCorrection1, mixed biasCorrection2Sqrt, mixed clipNorm, mixed stiffness) {
    mixed norm = sqrt((mixed) stats[0]);
    mixed clip = min((mixed) 1, clipNorm / (norm + (mixed) 1e-6));
    mixed stepSize = lr / biasCorrection1;
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        if (velm[i].w == 0)
            continue;
        int offset = 3 * order[i];
        mixed3 f = projectedForce(velm, i);
        mixed3 x = loadPosition(posq, correction, i);
        /* as EnergyBridge: a spring pulls the unconstrained candidate of the last step onto the constraints */
        mixed g[3];
        g[0] = -clip * f.x + stiffness * (candidate[offset] - x.x);
        g[1] = -clip * f.y + stiffness * (candidate[offset + 1] - x.y);
        g[2] = -clip * f.z + stiffness * (candidate[offset + 2] - x.z);
        mixed d[3];
        for (int k = 0; k < 3; k++) {
            mixed mk = beta1 * m[offset + k] + (1 - beta1) * g[k];
            mixed vk = beta2 * v[offset + k] + (1 - beta2) * g[k] * g[k];
            m[offset + k] = mk;
            v[offset + k] = vk;
            d[k] = stepSize * mk / (sqrt(vk) / biasCorrection2Sqrt + eps);
        }
        storePosition(posq, correction, i, make_mixed3(x.x - d[0], x.y - d[1], x.z - d[2]));
    }
}

KERNEL void saveBest(GLOBAL const real4* RESTRICT posq, GLOBAL const real4* RESTRICT correction,
                     GLOBAL const int* RESTRICT order, GLOBAL mixed* RESTRICT best) {
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        mixed3 x = loadPosition(posq, correction, i);
        int offset = 3 * order[i];
        best[offset] = x.x;
        best[offset + 1] = x.y;
        best[offset + 2] = x.z;
    }
}

KERNEL void restoreBest(GLOBAL real4* RESTRICT posq, GLOBAL real4* RESTRICT correction,
                        GLOBAL const int* RESTRICT order, GLOBAL const mixed* RESTRICT best) {
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        int offset = 3 * order[i];
        storePosition(posq, correction, i, make_mixed3(best[offset], best[offset + 1], best[offset + 2]));
    }
}
)KERNELS";
#endif
