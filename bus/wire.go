package bus

import "encoding/json"

// request is the document a caller pushes onto an object's queue.
// See docs/bus.md for the wire format.
type request struct {
	// ID identifies the call; the reply carries it back.
	ID string `json:"id"`
	// Object is "module/object@version" (informative: the queue says it).
	Object string `json:"object"`
	// Method is the method name.
	Method string `json:"method"`
	// Args is a JSON array with one element per argument.
	Args json.RawMessage `json:"args"`
	// Deadline is when the caller stops waiting, in Unix milliseconds.
	Deadline int64 `json:"deadline"`
	// ReplyTo is the Redis list the reply is pushed to.
	ReplyTo string `json:"reply_to"`
}

// reply is the document a server pushes onto the request's reply_to list.
type reply struct {
	// ID is the request's id.
	ID string `json:"id"`
	// Result is the method's result; absent or null for none.
	Result json.RawMessage `json:"result,omitempty"`
	// Error is set when the call failed; Result is then absent.
	Error *Error `json:"error,omitempty"`
}

// streamField is the field of a stream entry that holds the JSON event.
const streamField = "event"
