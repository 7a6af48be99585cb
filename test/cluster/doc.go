// Package cluster tests Castellan as it runs in production when one node is
// not enough: several real castellan processes, built from this tree, on
// separate ports, sharing one PostgreSQL database and one master key. The
// tests sign in on one node and carry on on the others, race single-use
// operations across nodes, and kill nodes and the database under load.
//
// They need CASTELLAN_TEST_POSTGRES (they skip without it, and fail under
// CI=true). The test that restarts the local PostgreSQL server itself runs
// only with CASTELLAN_TEST_PG_RESTART=1, as root, and must not run beside
// other tests that use that server (.ci/run gives it a step of its own).
package cluster
