//go:build !(linux || darwin || freebsd)

package sqlstore

import "errors"

// spaceLeft cannot tell on this system: an I/O error is reported as it is.
func spaceLeft(string) (bool, error) { return false, errors.New("free space unknown on this system") }
