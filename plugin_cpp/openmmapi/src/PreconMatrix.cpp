/* PreconMatrix: envelope L D L^T factorization and solve of the precon stage's P (see PreconMatrix.h). */
#include "PreconMatrix.h"
#include "openmm/OpenMMException.h"
#include <algorithm>
#include <cmath>
#include <sstream>

using namespace ReparamPlugin;

PreconMatrix::PreconMatrix(int n, const std::vector<double>& indptr, const std::vector<double>& indices,
                           const std::vector<double>& values) : n(n), first(n), start(n + 1), diagonal(n, 0.0) {
    if ((int) indptr.size() != n + 1 || indices.size() != values.size() || (size_t) indptr[n] != values.size())
        throw OpenMM::OpenMMException("PreconMatrix: inconsistent CSR arrays");
    for (int i = 0; i < n; i++) {
        first[i] = i;
        for (long k = (long) indptr[i]; k < (long) indptr[i + 1]; k++)
            first[i] = std::min(first[i], (int) indices[k]);
        start[i + 1] = start[i] + (i - first[i]);
    }
    lower.assign(start[n], 0.0);
    for (int i = 0; i < n; i++)
        for (long k = (long) indptr[i]; k < (long) indptr[i + 1]; k++) {
            int j = (int) indices[k];
            if (j < 0 || j >= n)
                throw OpenMM::OpenMMException("PreconMatrix: column index out of range");
            if (j == i)
                diagonal[i] += values[k];
            else if (j < i)
                lower[start[i] + (j - first[i])] += values[k];
        }
    // Row by row: u_ij = A_ij - sum_k u_ik L_jk (k over both envelopes, k < j), L_ij = u_ij / D_j,
    // D_i = A_ii - sum_k u_ik L_ik. Row i's entries hold u_ij until the row is done, then L_ij.
    std::vector<double> u;
    for (int i = 0; i < n; i++) {
        double* row = lower.data() + start[i];
        int width = i - first[i];
        u.assign(row, row + width);
        for (int j = first[i]; j < i; j++) {
            const double* other = lower.data() + start[j];
            double sum = u[j - first[i]];
            for (int k = std::max(first[i], first[j]); k < j; k++)
                sum -= u[k - first[i]] * other[k - first[j]];
            u[j - first[i]] = sum;
        }
        double d = diagonal[i];
        for (int j = first[i]; j < i; j++) {
            double l = u[j - first[i]] / diagonal[j];
            d -= u[j - first[i]] * l;
            row[j - first[i]] = l;
        }
        if (!(d > 0) || !std::isfinite(d)) {
            std::stringstream msg;
            msg << "PreconMatrix: P is not positive definite (pivot " << d << " at row " << i << ")";
            throw OpenMM::OpenMMException(msg.str());
        }
        diagonal[i] = d;
    }
}

void PreconMatrix::solve(std::vector<double>& v) const {
    if ((int) v.size() != 3 * n)
        throw OpenMM::OpenMMException("PreconMatrix::solve: wrong vector size");
    for (int i = 0; i < n; i++) {       // L y = v
        const double* row = lower.data() + start[i];
        for (int j = first[i]; j < i; j++)
            for (int c = 0; c < 3; c++)
                v[3 * i + c] -= row[j - first[i]] * v[3 * j + c];
    }
    for (int i = 0; i < n; i++)         // D z = y
        for (int c = 0; c < 3; c++)
            v[3 * i + c] /= diagonal[i];
    for (int i = n - 1; i >= 0; i--) {  // L^T x = z
        const double* row = lower.data() + start[i];
        for (int j = first[i]; j < i; j++)
            for (int c = 0; c < 3; c++)
                v[3 * j + c] -= row[j - first[i]] * v[3 * i + c];
    }
}
