package localapi

import "errors"

// ErrNotFound is returned by a Backend for an unknown local service.
var ErrNotFound = errors.New("not found")
