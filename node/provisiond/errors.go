package provisiond

import "errors"

// ErrClosed: the engine was closed. The other errors of the engine are the
// sentinels of package gridtypes (ErrInvalid, ErrNotFound, ErrConflict...),
// because zos-api-light clients match the same ones on their side.
var ErrClosed = errors.New("engine closed")
