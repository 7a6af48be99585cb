//go:build linux || darwin || freebsd

package sqlstore

import "syscall"

// spaceLeft reports whether the file system holding dir has room for a few
// more pages: at least minFreeBytes available to unprivileged users, and a
// free inode where the file system counts them.
func spaceLeft(dir string) (bool, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false, err
	}
	if uint64(st.Files) > 0 && uint64(st.Ffree) == 0 {
		return false, nil
	}
	return uint64(st.Bavail)*uint64(st.Bsize) >= minFreeBytes, nil
}
