#ifndef OPENMM_REPARAM_PRECON_MATRIX_H_
#define OPENMM_REPARAM_PRECON_MATRIX_H_

/**
 * PreconMatrix: the preconditioner P = L(K) + mu I of the precon stage (n x n over the movable atoms, applied to
 * x, y and z alike), factorized once, and its exact solve P^-1 v. The C++ twin of
 * openmm_reparam.engines.precon.Preconditioner, which factorizes with scipy's sparse LU; both are exact solves
 * and agree to rounding (tests/test_precon_compiled.py).
 *
 * P arrives as CSR arrays (scipy's indptr, indices, data; both triangles, symmetric positive definite). It is
 * factorized as P = L D L^T (no square roots, no pivoting: P is SPD) in envelope (profile) storage in the given
 * atom order: row i keeps the columns from its first nonzero one to the diagonal, where all fill stays. A
 * protein's atoms come residue by residue, so rows are short and the cost is about n w^2 for envelope width w;
 * a row without off-diagonal entries (an uncoupled atom, P = mu I for the polish's finish) costs nothing and
 * its solve is the division v_i / P_ii, as in the LU. Dense P is the worst case (n^3 / 3).
 */

#include <vector>

namespace ReparamPlugin {

class PreconMatrix {
public:
    /** P from CSR arrays of an n x n matrix (indices as doubles: SWIG's vector typemaps). */
    PreconMatrix(int n, const std::vector<double>& indptr, const std::vector<double>& indices,
                 const std::vector<double>& values);
    int size() const { return n; }
    /** Overwrite v (n x 3 values, row-major) with P^-1 v. */
    void solve(std::vector<double>& v) const;
    /** Stored entries of the factor (the envelope's size): what the solve costs. */
    long envelopeSize() const { return (long) lower.size(); }
    /** The factor, for solves elsewhere (the device precon stage uploads it): row i's envelope starts at column
     *  getFirst()[i] and is stored at getLower()[getStart()[i] ...] (L below the unit diagonal); D is getDiagonal(). */
    const std::vector<int>& getFirst() const { return first; }
    const std::vector<long>& getStart() const { return start; }
    const std::vector<double>& getLower() const { return lower; }
    const std::vector<double>& getDiagonal() const { return diagonal; }
private:
    int n;
    std::vector<int> first;       // first column of row i's envelope (i when the row is diagonal)
    std::vector<long> start;      // offset of row i's envelope in lower
    std::vector<double> lower, diagonal;  // L's envelope (unit diagonal left out) and D
};

} // namespace ReparamPlugin

#endif
