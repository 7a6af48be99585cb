// Package loadgen is Castellan's load generator (cmd/castellan-bench). It drives
// real protocol flows over HTTP against a running provider — client
// credentials, refresh-token rotation, silent renewal with prompt=none, full
// password sign-in, introspection, userinfo and a blend of them — in a closed
// loop (N virtual clients, each sending its next request when the previous
// answer arrives) or an open model (a fixed arrival rate, latency measured from
// the intended send time so a slow server cannot hide its queue, the
// "coordinated omission" of closed-loop tools).
//
// It reports throughput, latency percentiles from a log-linear histogram,
// errors by status, the server's peak RSS and CPU time per operation when the
// server runs on this machine, and a baseline measured in the same run: the raw
// cost of one signature with the algorithm the server signs with and of one
// argon2id hash with its parameters, so every figure can be read as a fraction
// of what the cryptography alone allows.
//
// The clients and users it needs come from the provider's config (see
// NewConfig and WriteConfig); it never writes to the provider's database.
package loadgen
