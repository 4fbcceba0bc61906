/* The device Adam kernels, in OpenMM's common kernel language (KERNEL, GLOBAL, mixed, real4, ...): compiled by
 * ComputeContext::compileProgram for CUDA or OpenCL after projection.cc (loadPosition,
 * storePosition, minimumImage). Arrays indexed by atom (moments, best, candidate, generatorRow) use the original
 * atom order (order[i] of posq row i), so they survive OpenMM's atom reordering.
 *
 * With HAS_GENERATOR (a reparametrized stage, DeviceGeneratorKernels), the particles with generatorRow[atom] >= 0
 * are the generator's rows, at G(theta) (generator.cc): their gradient reaches theta as
 * J^T g (parameterGradient) and Adam steps theta (parameterAdamUpdate); the others (generatorRow -1) move as
 * plain coordinates (adamUpdate), clipped together with theta. */
/* The host stage's gradient of row i (EnergyBridge): -F_perp plus the spring pulling the unconstrained
   candidate of the last step onto the constrained positions x. */
DEVICE mixed3 adamGradient(GLOBAL const mixed* RESTRICT forces, GLOBAL const real4* RESTRICT posq,
                           GLOBAL const real4* RESTRICT correction, GLOBAL const int* RESTRICT order,
                           GLOBAL const mixed* RESTRICT candidate, mixed stiffness, int i,
                           int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC) {
    mixed3 g = make_mixed3(-forces[3 * i], -forces[3 * i + 1], -forces[3 * i + 2]);
    if (stiffness != 0) {
        int offset = 3 * order[i];
        mixed3 x = loadPosition(posq, correction, i);
        mixed3 d = minimumImage(make_mixed3(candidate[offset] - x.x, candidate[offset + 1] - x.y,
                                            candidate[offset + 2] - x.z), periodic, boxA, boxB, boxC);
        g.x += stiffness * d.x;
        g.y += stiffness * d.y;
        g.z += stiffness * d.z;
    }
    return g;
}

/* Per work group, over the movable (massive) rows: the sum of squared gradient components, the largest squared
   atomic raw force (the host stage's spike test uses the raw forces) and the sum of the squared projected forces
   (the host's RMS force, for its force-tolerance stop). */
KERNEL void gradientStats(GLOBAL const mixed* RESTRICT forces, GLOBAL const mm_long* RESTRICT force,
                          GLOBAL const mixed4* RESTRICT velm, GLOBAL const real4* RESTRICT posq,
                          GLOBAL const real4* RESTRICT correction, GLOBAL const int* RESTRICT order,
                          GLOBAL const mixed* RESTRICT candidate, GLOBAL mixed* RESTRICT reduceBuffer,
                          mixed stiffness, int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC,
                          GLOBAL const int* RESTRICT generatorRow) {
    LOCAL volatile mixed sums[THREAD_BLOCK_SIZE];
    LOCAL volatile mixed peaks[THREAD_BLOCK_SIZE];
    LOCAL volatile mixed projected[THREAD_BLOCK_SIZE];
    mixed sum = 0, peak = 0, along = 0;
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        if (velm[i].w == 0)
            continue;
#ifdef HAS_GENERATOR
        if (generatorRow[order[i]] < 0) {  // the generator's rows count through its parameters' gradient
#else
        {
#endif
            mixed3 g = adamGradient(forces, posq, correction, order, candidate, stiffness, i, periodic, boxA, boxB,
                                    boxC);
            sum += g.x * g.x + g.y * g.y + g.z * g.z;
        }
        mixed fx = FORCE_SCALE * force[i], fy = FORCE_SCALE * force[i + PADDED_NUM_ATOMS],
              fz = FORCE_SCALE * force[i + 2 * PADDED_NUM_ATOMS];
        peak = max(peak, fx * fx + fy * fy + fz * fz);
        along += forces[3 * i] * forces[3 * i] + forces[3 * i + 1] * forces[3 * i + 1] +
                 forces[3 * i + 2] * forces[3 * i + 2];
    }
    sums[LOCAL_ID] = sum;
    peaks[LOCAL_ID] = peak;
    projected[LOCAL_ID] = along;
    SYNC_THREADS;
    for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
        if (LOCAL_ID < step) {
            sums[LOCAL_ID] += sums[LOCAL_ID + step];
            peaks[LOCAL_ID] = max(peaks[LOCAL_ID], peaks[LOCAL_ID + step]);
            projected[LOCAL_ID] += projected[LOCAL_ID + step];
        }
        SYNC_THREADS;
    }
    if (LOCAL_ID == 0) {
        reduceBuffer[GROUP_ID] = sums[0];
        reduceBuffer[GROUP_ID + NUM_BLOCKS] = peaks[0];
        reduceBuffer[GROUP_ID + 2 * NUM_BLOCKS] = projected[0];
    }
}

/* One work group: stats = {sum of squares (the generator's parameter gradient included), largest squared
   atomic force, sum of the squared projected forces}. */
KERNEL void finishStats(GLOBAL const mixed* RESTRICT reduceBuffer, GLOBAL mixed* RESTRICT stats,
                        GLOBAL const mixed* RESTRICT parameterGradient) {
    LOCAL volatile mixed sums[THREAD_BLOCK_SIZE];
    LOCAL volatile mixed peaks[THREAD_BLOCK_SIZE];
    LOCAL volatile mixed projected[THREAD_BLOCK_SIZE];
    mixed sum = 0, peak = 0, along = 0;
    for (int i = LOCAL_ID; i < NUM_BLOCKS; i += LOCAL_SIZE) {
        sum += reduceBuffer[i];
        peak = max(peak, reduceBuffer[i + NUM_BLOCKS]);
        along += reduceBuffer[i + 2 * NUM_BLOCKS];
    }
#ifdef HAS_GENERATOR
    for (int i = LOCAL_ID; i < NUM_PARAMS; i += LOCAL_SIZE)
        sum += parameterGradient[i] * parameterGradient[i];
#endif
    sums[LOCAL_ID] = sum;
    peaks[LOCAL_ID] = peak;
    projected[LOCAL_ID] = along;
    SYNC_THREADS;
    for (int step = LOCAL_SIZE / 2; step > 0; step >>= 1) {
        if (LOCAL_ID < step) {
            sums[LOCAL_ID] += sums[LOCAL_ID + step];
            peaks[LOCAL_ID] = max(peaks[LOCAL_ID], peaks[LOCAL_ID + step]);
            projected[LOCAL_ID] += projected[LOCAL_ID + step];
        }
        SYNC_THREADS;
    }
    if (LOCAL_ID == 0) {
        stats[0] = sums[0];
        stats[1] = peaks[0];
        stats[2] = projected[0];
    }
}

/* clip_grad_norm_'s factor for the whole gradient, whose squared norm is stats[0]. */
DEVICE mixed clipFactor(GLOBAL const mixed* RESTRICT stats, mixed clipNorm) {
    return min((mixed) 1, clipNorm / (sqrt((mixed) stats[0]) + (mixed) 1e-6));
}

/* One torch.optim.Adam step of one component with (clipped) gradient g: its moments updated in place, the step
   to subtract returned (the host stage: AdamOptimizer). */
DEVICE mixed adamStep(GLOBAL mixed* RESTRICT m, GLOBAL mixed* RESTRICT v, int k, mixed g, mixed stepSize,
                      mixed beta1, mixed beta2, mixed eps, mixed biasCorrection2Sqrt) {
    mixed mk = beta1 * m[k] + (1 - beta1) * g;
    mixed vk = beta2 * v[k] + (1 - beta2) * g * g;
    m[k] = mk;
    v[k] = vk;
    return stepSize * mk / (sqrt(vk) / biasCorrection2Sqrt + eps);
}

/* torch.optim.Adam on the coordinates after clip_grad_norm_ to clipNorm (the host stage: AdamOptimizer). */
KERNEL void adamUpdate(GLOBAL real4* RESTRICT posq, GLOBAL real4* RESTRICT correction,
                       GLOBAL const mixed4* RESTRICT velm, GLOBAL const int* RESTRICT order, GLOBAL mixed* RESTRICT m,
                       GLOBAL mixed* RESTRICT v, GLOBAL const mixed* RESTRICT stats,
                       GLOBAL const mixed* RESTRICT candidate, GLOBAL const mixed* RESTRICT forces,
                       mixed lr, mixed beta1, mixed beta2, mixed eps, mixed biasCorrection1,
                       mixed biasCorrection2Sqrt, mixed clipNorm, mixed stiffness,
                       int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC,
                       GLOBAL const int* RESTRICT generatorRow) {
    mixed clip = clipFactor(stats, clipNorm);
    mixed stepSize = lr / biasCorrection1;
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        if (velm[i].w == 0)
            continue;
#ifdef HAS_GENERATOR
        if (generatorRow[order[i]] >= 0)
            continue;  // moved by the generator (placeRows)
#endif
        int offset = 3 * order[i];
        mixed3 x = loadPosition(posq, correction, i);
        mixed3 grad = adamGradient(forces, posq, correction, order, candidate, stiffness, i, periodic, boxA, boxB, boxC);
        mixed g[3] = {clip * grad.x, clip * grad.y, clip * grad.z};
        mixed d[3];
        for (int k = 0; k < 3; k++)
            d[k] = adamStep(m, v, offset + k, g[k], stepSize, beta1, beta2, eps, biasCorrection2Sqrt);
        storePosition(posq, correction, i, make_mixed3(x.x - d[0], x.y - d[1], x.z - d[2]));
    }
}

#ifdef HAS_GENERATOR
/* torch.optim.Adam on the generator's parameters after the clipping of the whole gradient (theirs and the
   coordinates', as adamUpdate). */
KERNEL void parameterAdamUpdate(GLOBAL mixed* RESTRICT parameters, GLOBAL mixed* RESTRICT m,
                                GLOBAL mixed* RESTRICT v, GLOBAL const mixed* RESTRICT parameterGradient,
                                GLOBAL const mixed* RESTRICT stats, mixed lr, mixed beta1, mixed beta2, mixed eps,
                                mixed biasCorrection1, mixed biasCorrection2Sqrt, mixed clipNorm) {
    mixed clip = clipFactor(stats, clipNorm);
    mixed stepSize = lr / biasCorrection1;
    for (int i = GLOBAL_ID; i < NUM_PARAMS; i += GLOBAL_SIZE)
        parameters[i] -= adamStep(m, v, i, clip * parameterGradient[i], stepSize, beta1, beta2, eps,
                                  biasCorrection2Sqrt);
}
#endif
