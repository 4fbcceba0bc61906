/* Least-squares removal of constraint force components (see ConstraintProjector.h). */
#include "ConstraintProjector.h"
#include <cmath>
#include <map>
#include <numeric>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {

int findRoot(std::vector<int>& parent, int i) {
    while (parent[i] != i)
        i = parent[i] = parent[parent[i]];
    return i;
}

/** Solve the symmetric positive (semi)definite system A x = b in place (Gaussian elimination, partial pivoting;
 *  singular directions, e.g. redundant constraints, get 0 like a minimum-norm solution would along them). */
void solveDense(std::vector<double>& a, std::vector<double>& b, int n) {
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    for (int col = 0; col < n; col++) {
        int pivot = col;
        for (int r = col + 1; r < n; r++)
            if (std::fabs(a[r * n + col]) > std::fabs(a[pivot * n + col]))
                pivot = r;
        if (pivot != col) {
            for (int c = 0; c < n; c++)
                std::swap(a[col * n + c], a[pivot * n + c]);
            std::swap(b[col], b[pivot]);
        }
        double diag = a[col * n + col];
        if (std::fabs(diag) < 1e-14)
            continue;
        for (int r = col + 1; r < n; r++) {
            double factor = a[r * n + col] / diag;
            if (factor == 0.0)
                continue;
            for (int c = col; c < n; c++)
                a[r * n + c] -= factor * a[col * n + c];
            b[r] -= factor * b[col];
        }
    }
    for (int row = n - 1; row >= 0; row--) {
        double diag = a[row * n + row];
        if (std::fabs(diag) < 1e-14) {
            b[row] = 0.0;
            continue;
        }
        double sum = b[row];
        for (int c = row + 1; c < n; c++)
            sum -= a[row * n + c] * b[c];
        b[row] = sum / diag;
    }
}

} // namespace

ConstraintProjector::ConstraintProjector(const System& system) {
    int n = system.getNumConstraints();
    std::vector<int> parent(system.getNumParticles());
    std::iota(parent.begin(), parent.end(), 0);
    for (int k = 0; k < n; k++) {
        int i, j;
        double distance;
        system.getConstraintParameters(k, i, j, distance);
        first.push_back(i);
        second.push_back(j);
        parent[findRoot(parent, i)] = findRoot(parent, j);
    }
    std::map<int, int> groupOfRoot;
    for (int k = 0; k < n; k++) {
        int root = findRoot(parent, first[k]);
        auto found = groupOfRoot.find(root);
        if (found == groupOfRoot.end()) {
            groupOfRoot[root] = (int) groups.size();
            groups.push_back(std::vector<int>());
            found = groupOfRoot.find(root);
        }
        groups[found->second].push_back(k);
    }
}

/** Large groups (e.g. all-bond constraints): conjugate gradients on (J J^T) lambda = J F, products through J. */
static void solveIterative(const std::vector<int>& group, const std::vector<int>& first, const std::vector<int>& second,
                           const std::vector<Vec3>& direction, std::vector<double>& b, int numParticles) {
    int m = (int) group.size();
    std::vector<Vec3> work(numParticles);
    auto multiply = [&](const std::vector<double>& v, std::vector<double>& out) {  // out = J J^T v
        for (int c = 0; c < m; c++) {
            work[first[group[c]]] = Vec3();
            work[second[group[c]]] = Vec3();
        }
        for (int c = 0; c < m; c++) {
            work[first[group[c]]] += direction[c] * v[c];
            work[second[group[c]]] -= direction[c] * v[c];
        }
        for (int c = 0; c < m; c++)
            out[c] = direction[c].dot(work[first[group[c]]] - work[second[group[c]]]);
    };
    std::vector<double> x(m, 0.0), r = b, p = b, q(m);
    double rr = std::inner_product(r.begin(), r.end(), r.begin(), 0.0), target = rr * 1e-28;
    for (int iteration = 0; iteration < 10 * m && rr > target && rr > 0.0; iteration++) {
        multiply(p, q);
        double alpha = rr / std::inner_product(p.begin(), p.end(), q.begin(), 0.0);
        for (int c = 0; c < m; c++) {
            x[c] += alpha * p[c];
            r[c] -= alpha * q[c];
        }
        double next = std::inner_product(r.begin(), r.end(), r.begin(), 0.0);
        for (int c = 0; c < m; c++)
            p[c] = r[c] + (next / rr) * p[c];
        rr = next;
    }
    b = x;
}

void ConstraintProjector::project(std::vector<Vec3>& forces, const std::vector<Vec3>& positions) const {
    const int denseLimit = 64;
    std::vector<double> a, b;
    std::vector<Vec3> direction;
    for (const std::vector<int>& group : groups) {
        int m = (int) group.size();
        direction.resize(m);
        for (int c = 0; c < m; c++) {
            int k = group[c];
            Vec3 d = positions[first[k]] - positions[second[k]];
            direction[c] = d / std::max(std::sqrt(d.dot(d)), 1e-12);
        }
        if (m > denseLimit) {
            b.assign(m, 0.0);
            for (int c = 0; c < m; c++)
                b[c] = direction[c].dot(forces[first[group[c]]] - forces[second[group[c]]]);
            solveIterative(group, first, second, direction, b, (int) forces.size());
            for (int c = 0; c < m; c++) {
                forces[first[group[c]]] -= direction[c] * b[c];
                forces[second[group[c]]] += direction[c] * b[c];
            }
            continue;
        }
        // (J J^T)_{cl} = sum over shared particles of the signed direction products; (J F)_c = d.(F_i - F_j).
        a.assign(m * m, 0.0);
        b.assign(m, 0.0);
        for (int c = 0; c < m; c++) {
            int kc = group[c];
            b[c] = direction[c].dot(forces[first[kc]] - forces[second[kc]]);
            for (int l = 0; l < m; l++) {
                int kl = group[l];
                double sum = 0.0;
                if (first[kc] == first[kl]) sum += direction[c].dot(direction[l]);
                if (first[kc] == second[kl]) sum -= direction[c].dot(direction[l]);
                if (second[kc] == first[kl]) sum -= direction[c].dot(direction[l]);
                if (second[kc] == second[kl]) sum += direction[c].dot(direction[l]);
                a[c * m + l] = sum;
            }
        }
        solveDense(a, b, m);
        for (int c = 0; c < m; c++) {
            int k = group[c];
            forces[first[k]] -= direction[c] * b[c];
            forces[second[k]] += direction[c] * b[c];
        }
    }
}
