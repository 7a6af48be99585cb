package logout

import "github.com/castellan-auth/castellan/internal/storage"

// Observe makes n call f with every attempt's outcome (delivered, refused,
// failed, given_up) once storage holds it, so that a test moves the clock
// only after the retry was scheduled.
func (n *Notifier) Observe(f func(storage.LogoutNotice, string)) { n.observe.Store(&f) }
