/* Minimal assertion helpers shared by the C++ tests (a failing check throws; main() reports FAIL). */
#ifndef REPARAM_TEST_UTILITIES_H_
#define REPARAM_TEST_UTILITIES_H_

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#define REPARAM_ASSERT(cond) do { if (!(cond)) throw std::runtime_error(std::string("check failed: ") + #cond + \
    " at line " + std::to_string(__LINE__)); } while (0)
#define REPARAM_ASSERT_CLOSE(a, b, tol) do { double _a = (a), _b = (b); \
    if (!(std::fabs(_a - _b) <= (tol) * std::max(1.0, std::fabs(_b)))) throw std::runtime_error( \
    "values differ at line " + std::to_string(__LINE__) + ": " + std::to_string(_a) + " vs " + std::to_string(_b)); } while (0)

#endif
