package gridtypes

import (
	"errors"
	"fmt"
)

// Sentinel errors of deployments; branch with errors.Is. The engine
// (node/provisiond) returns them, the zos-api-light server maps each to its
// own JSON-RPC error code, and its client maps the codes back to them, so
// the same errors.Is works on both sides of the API.
var (
	// ErrInvalid: the deployment is malformed or breaks a schema rule. The
	// error is a *ValidationError naming the field.
	ErrInvalid = errors.New("invalid deployment")
	// ErrSignature: a signature does not verify, or the signatures do not
	// meet the deployment's signature requirement.
	ErrSignature = errors.New("deployment signature")
	// ErrNotFound: no deployment with that id.
	ErrNotFound = errors.New("deployment not found")
	// ErrForbidden: the deployment belongs to another twin.
	ErrForbidden = errors.New("deployment belongs to another twin")
	// ErrConflict: the request does not apply to the deployment as it is
	// (wrong version, already deleted, nothing to pause...).
	ErrConflict = errors.New("conflict")
	// ErrBusy: an operation on the deployment is still queued or running.
	ErrBusy = errors.New("deployment busy")
	// ErrCapacity: the node does not have the free capacity the deployment
	// needs.
	ErrCapacity = errors.New("not enough capacity")
	// ErrContract: the deployment's contract does not allow it on this
	// node (none given, unknown, another twin's or node's, another
	// deployment hash, smaller than what the deployment needs, in grace,
	// deleted), or the node cannot check it.
	ErrContract = errors.New("no usable contract")
)

// ValidationError is a refused field. It matches ErrInvalid.
type ValidationError struct {
	// Field is the path of the field in the deployment, e.g.
	// "workloads[1].data.size" ("" for the whole document).
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error returns "invalid deployment: <field>: <reason>".
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid deployment: " + e.Reason
	}
	return "invalid deployment: " + e.Field + ": " + e.Reason
}

// Is matches ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// fieldErr makes a ValidationError.
func fieldErr(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// under prefixes the field of a ValidationError (or wraps another error
// as one) with prefix.
func under(prefix string, err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		f := prefix
		if ve.Field != "" {
			f += "." + ve.Field
		}
		return &ValidationError{Field: f, Reason: ve.Reason}
	}
	return &ValidationError{Field: prefix, Reason: err.Error()}
}
