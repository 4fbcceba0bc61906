/* Kernels shared by the device stages, in OpenMM's common kernel language: positions in mixed precision, the
 * forces out of OpenMM's fixed-point buffer, the orthogonal projection onto the constraints' tangent space
 * (ConstraintProjector's, one work item per connected group of constraints) and the periodic minimum image of
 * small displacements (OpenMM's atom reordering may shift whole molecules by box vectors). */
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

/* d reduced to its periodic minimum image (box vectors in OpenMM's reduced form; periodic = 0: d itself). */
DEVICE mixed3 minimumImage(mixed3 d, int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC) {
    if (periodic) {
        mixed s = floor(d.z / boxC.z + (mixed) 0.5);
        d.x -= s * boxC.x;
        d.y -= s * boxC.y;
        d.z -= s * boxC.z;
        s = floor(d.y / boxB.y + (mixed) 0.5);
        d.x -= s * boxB.x;
        d.y -= s * boxB.y;
        s = floor(d.x / boxA.x + (mixed) 0.5);
        d.x -= s * boxA.x;
    }
    return d;
}

/* forces[3 i + k]: the force on posq row i (all rows, massless ones included), from the fixed-point buffer;
   overflow[0] = 1 where a component on a movable (massive) row is beyond 2^30 kJ/mol/nm, OpenMM's minimizer's
   test (convertForces in its kernels/minimize.cc): the 64-bit sums wrap around at 2^31. */
KERNEL void loadForces(GLOBAL mixed* RESTRICT forces, GLOBAL const mm_long* RESTRICT force,
                       GLOBAL const mixed4* RESTRICT velm, GLOBAL int* RESTRICT overflow) {
    const mm_long limit = 0x4000000000000000;
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        mm_long fx = force[i], fy = force[i + PADDED_NUM_ATOMS], fz = force[i + 2 * PADDED_NUM_ATOMS];
        forces[3 * i] = FORCE_SCALE * fx;
        forces[3 * i + 1] = FORCE_SCALE * fy;
        forces[3 * i + 2] = FORCE_SCALE * fz;
        if (velm[i].w != 0 && (fx < -limit || fx > limit || fy < -limit || fy > limit || fz < -limit || fz > limit))
            overflow[0] = 1;
    }
}

/* Solve the m x m system a x = b in place (b becomes x): Gaussian elimination with partial pivoting, singular
   directions get 0 (ConstraintProjector's solveDense, in the same order). */
DEVICE void solveGroup(mixed* a, mixed* b, int m) {
    for (int col = 0; col < m; col++) {
        int pivot = col;
        for (int r = col + 1; r < m; r++)
            if (fabs(a[r * MAX_GROUP + col]) > fabs(a[pivot * MAX_GROUP + col]))
                pivot = r;
        if (pivot != col) {
            for (int c = 0; c < m; c++) {
                mixed t = a[col * MAX_GROUP + c];
                a[col * MAX_GROUP + c] = a[pivot * MAX_GROUP + c];
                a[pivot * MAX_GROUP + c] = t;
            }
            mixed t = b[col];
            b[col] = b[pivot];
            b[pivot] = t;
        }
        mixed diag = a[col * MAX_GROUP + col];
        if (fabs(diag) < (mixed) 1e-14)
            continue;
        for (int r = col + 1; r < m; r++) {
            mixed factor = a[r * MAX_GROUP + col] / diag;
            if (factor == 0)
                continue;
            for (int c = col; c < m; c++)
                a[r * MAX_GROUP + c] -= factor * a[col * MAX_GROUP + c];
            b[r] -= factor * b[col];
        }
    }
    for (int row = m - 1; row >= 0; row--) {
        mixed diag = a[row * MAX_GROUP + row];
        if (fabs(diag) < (mixed) 1e-14) {
            b[row] = 0;
            continue;
        }
        mixed sum = b[row];
        for (int c = row + 1; c < m; c++)
            sum -= a[row * MAX_GROUP + c] * b[c];
        b[row] = sum / diag;
    }
}

DEVICE mixed dot3(mixed3 a, mixed3 b) {
    return a.x * b.x + a.y * b.y + a.z * b.z;
}

/* values (3 per atom; rows of posq, or original atom indices through order when byOrder) become V - J^T lambda,
   lambda the least-squares multipliers of J^T lambda = V, J: the unit vectors along the constraints at the
   current positions, +d on a constraint's first particle and -d on its second. One work item per connected
   group of constraints (groups share no particle, so no two work items touch the same atom). */
KERNEL void projectGroups(GLOBAL const real4* RESTRICT posq, GLOBAL const real4* RESTRICT correction,
                          GLOBAL mixed* RESTRICT values, GLOBAL const int* RESTRICT order, int byOrder,
                          GLOBAL const int* RESTRICT groupStart, GLOBAL const int2* RESTRICT pairs) {
    for (int g = GLOBAL_ID; g < NUM_CONSTRAINT_GROUPS; g += GLOBAL_SIZE) {
        int start = groupStart[g], m = groupStart[g + 1] - start;
        mixed3 d[MAX_GROUP];
        int2 atoms[MAX_GROUP];
        mixed a[MAX_GROUP * MAX_GROUP], b[MAX_GROUP];
        for (int c = 0; c < m; c++) {
            int2 p = pairs[start + c];
            mixed3 x1 = loadPosition(posq, correction, p.x), x2 = loadPosition(posq, correction, p.y);
            mixed3 r = make_mixed3(x1.x - x2.x, x1.y - x2.y, x1.z - x2.z);
            mixed scale = 1 / max(sqrt(dot3(r, r)), (mixed) 1e-12);
            d[c] = make_mixed3(r.x * scale, r.y * scale, r.z * scale);
            atoms[c] = byOrder ? make_int2(3 * order[p.x], 3 * order[p.y]) : make_int2(3 * p.x, 3 * p.y);
            b[c] = d[c].x * (values[atoms[c].x] - values[atoms[c].y])
                 + d[c].y * (values[atoms[c].x + 1] - values[atoms[c].y + 1])
                 + d[c].z * (values[atoms[c].x + 2] - values[atoms[c].y + 2]);
        }
        for (int c = 0; c < m; c++)
            for (int l = 0; l < m; l++) {
                mixed product = dot3(d[c], d[l]), sum = 0;
                if (atoms[c].x == atoms[l].x) sum += product;
                if (atoms[c].x == atoms[l].y) sum -= product;
                if (atoms[c].y == atoms[l].x) sum -= product;
                if (atoms[c].y == atoms[l].y) sum += product;
                a[c * MAX_GROUP + l] = sum;
            }
        solveGroup(a, b, m);
        for (int c = 0; c < m; c++) {
            values[atoms[c].x] -= d[c].x * b[c];
            values[atoms[c].x + 1] -= d[c].y * b[c];
            values[atoms[c].x + 2] -= d[c].z * b[c];
            values[atoms[c].y] += d[c].x * b[c];
            values[atoms[c].y + 1] += d[c].y * b[c];
            values[atoms[c].y + 2] += d[c].z * b[c];
        }
    }
}

/* The large groups (more than MAX_GROUP constraints: HAngles, AllBonds), one work item each: the same
   least-squares multipliers by conjugate gradients on (J J^T) lambda = J V, products through J (the host's
   ConstraintProjector::solveIterative, to a residual of CG_TARGET relative). scratch holds 7 values per
   constraint (d, lambda, r, p, q), atomWork 3 per atom (groups share no atom). */
DEVICE void largeGroupProduct(GLOBAL const int2* RESTRICT pairs, GLOBAL mixed* RESTRICT scratch,
                              GLOBAL mixed* RESTRICT atomWork, int start, int m, int from, int to) {
    for (int c = 0; c < m; c++) {
        int2 p = pairs[start + c];
        for (int k = 0; k < 3; k++)
            atomWork[3 * p.x + k] = atomWork[3 * p.y + k] = 0;
    }
    for (int c = 0; c < m; c++) {
        int2 p = pairs[start + c];
        GLOBAL mixed* e = scratch + 7 * (start + c);
        for (int k = 0; k < 3; k++) {
            atomWork[3 * p.x + k] += e[k] * e[from];
            atomWork[3 * p.y + k] -= e[k] * e[from];
        }
    }
    for (int c = 0; c < m; c++) {
        int2 p = pairs[start + c];
        GLOBAL mixed* e = scratch + 7 * (start + c);
        e[to] = e[0] * (atomWork[3 * p.x] - atomWork[3 * p.y]) + e[1] * (atomWork[3 * p.x + 1] - atomWork[3 * p.y + 1])
              + e[2] * (atomWork[3 * p.x + 2] - atomWork[3 * p.y + 2]);
    }
}

KERNEL void projectLargeGroups(GLOBAL const real4* RESTRICT posq, GLOBAL const real4* RESTRICT correction,
                               GLOBAL mixed* RESTRICT values, GLOBAL const int* RESTRICT order, int byOrder,
                               GLOBAL const int* RESTRICT groupStart, GLOBAL const int2* RESTRICT pairs,
                               GLOBAL mixed* RESTRICT scratch, GLOBAL mixed* RESTRICT atomWork) {
    for (int g = GLOBAL_ID; g < NUM_LARGE_GROUPS; g += GLOBAL_SIZE) {
        int start = groupStart[g], m = groupStart[g + 1] - start;
        mixed rr = 0;
        for (int c = 0; c < m; c++) {  /* d, lambda = 0, r = p = J V */
            int2 p = pairs[start + c];
            GLOBAL mixed* e = scratch + 7 * (start + c);
            mixed3 x1 = loadPosition(posq, correction, p.x), x2 = loadPosition(posq, correction, p.y);
            mixed3 r = make_mixed3(x1.x - x2.x, x1.y - x2.y, x1.z - x2.z);
            mixed scale = 1 / max(sqrt(dot3(r, r)), (mixed) 1e-12);
            e[0] = r.x * scale;
            e[1] = r.y * scale;
            e[2] = r.z * scale;
            int a = byOrder ? 3 * order[p.x] : 3 * p.x, b = byOrder ? 3 * order[p.y] : 3 * p.y;
            e[3] = 0;
            e[4] = e[5] = e[0] * (values[a] - values[b]) + e[1] * (values[a + 1] - values[b + 1])
                        + e[2] * (values[a + 2] - values[b + 2]);
            rr += e[4] * e[4];
        }
        mixed target = rr * (mixed) CG_TARGET;
        for (int iteration = 0; iteration < 10 * m && rr > target && rr > 0; iteration++) {
            largeGroupProduct(pairs, scratch, atomWork, start, m, 5, 6);  /* q = J J^T p */
            mixed pq = 0;
            for (int c = 0; c < m; c++)
                pq += scratch[7 * (start + c) + 5] * scratch[7 * (start + c) + 6];
            mixed alpha = rr / pq, next = 0;
            for (int c = 0; c < m; c++) {
                GLOBAL mixed* e = scratch + 7 * (start + c);
                e[3] += alpha * e[5];
                e[4] -= alpha * e[6];
                next += e[4] * e[4];
            }
            for (int c = 0; c < m; c++) {
                GLOBAL mixed* e = scratch + 7 * (start + c);
                e[5] = e[4] + (next / rr) * e[5];
            }
            rr = next;
        }
        for (int c = 0; c < m; c++) {  /* V -= J^T lambda */
            int2 p = pairs[start + c];
            GLOBAL mixed* e = scratch + 7 * (start + c);
            int a = byOrder ? 3 * order[p.x] : 3 * p.x, b = byOrder ? 3 * order[p.y] : 3 * p.y;
            for (int k = 0; k < 3; k++) {
                values[a + k] -= e[k] * e[3];
                values[b + k] += e[k] * e[3];
            }
        }
    }
}

/* Per-atom copies of the positions by original atom index (best points, candidates): save, and restore as the
   images nearest the current positions. */
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

/* posq = best, taken as the periodic image nearest the current position (a molecule OpenMM shifted by a box
   vector since best was saved stays where it is now). */
KERNEL void restoreBest(GLOBAL real4* RESTRICT posq, GLOBAL real4* RESTRICT correction,
                        GLOBAL const int* RESTRICT order, GLOBAL const mixed* RESTRICT best,
                        int periodic, mixed4 boxA, mixed4 boxB, mixed4 boxC) {
    for (int i = GLOBAL_ID; i < NUM_ATOMS; i += GLOBAL_SIZE) {
        int offset = 3 * order[i];
        mixed3 x = loadPosition(posq, correction, i);
        mixed3 d = minimumImage(make_mixed3(best[offset] - x.x, best[offset + 1] - x.y, best[offset + 2] - x.z),
                                periodic, boxA, boxB, boxC);
        storePosition(posq, correction, i, make_mixed3(x.x + d.x, x.y + d.y, x.z + d.z));
    }
}
