// Package blob keeps artifact bytes, content-addressed by their SHA-256.
//
// A Store streams bytes into a temporary object of its Driver while computing
// the SHA-256, SHA-512, SHA-1 and MD5 digests, checks them against what the
// client promised, and only then commits the object under its SHA-256. The
// same bytes are therefore stored once, whichever repository or format they
// came through. Resumable upload sessions keep their bytes and the running
// hash state in the driver, so that they survive a restart.
//
// Garbage collection frees blobs through Store.Sweep, which excludes the
// writers of this process that hold Store.Hold between committing a blob
// and recording it; across processes only the grace period, counted from a
// blob's last commit, protects a blob. See Store.
//
// Drivers see only opaque keys (hex SHA-256 digests and session ids) and
// streams; nothing outside a driver touches file paths, so an object-store
// driver can implement the same interface.
package blob
