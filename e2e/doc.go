// Package e2e holds the end-to-end tests: they run the real arca binary on a
// free loopback port with a temporary data folder and drive it with real
// clients (curl, and the package managers of each format).
//
// The binary is $ARCA_BIN when set (the test script builds it without -race),
// otherwise the tests build it once. A test whose client is missing is
// skipped on a developer's machine and fails under CI=true.
package e2e
