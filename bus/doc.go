// Package bus is the node's inter-module bus: remote calls and event
// streams between the modules of a node (identityd, noded, registrar_light,
// …), each a separate daemon, over one Redis.
//
// # Calls
//
// A module serves named, versioned objects, "module/object@version" (for
// example "identityd/manager@1.0"), each a set of methods:
//
//	srv := bus.NewServer(client, bus.ServerOptions{})
//	err := srv.Handle("identityd/manager@1.0", bus.Methods{
//		"NodeID": bus.Func0(m.NodeID), // func(ctx) (uint64, error)
//		"Sign":   bus.Func1(m.Sign),   // func(ctx, []byte) ([]byte, error)
//	})
//	err = srv.Serve(ctx)
//
// Callers use typed stubs, a few lines each:
//
//	type IdentityStub struct{ c *bus.Client }
//
//	func (s IdentityStub) NodeID(ctx context.Context) (uint64, error) {
//		return bus.Call[uint64](ctx, s.c, "identityd/manager@1.0", "NodeID")
//	}
//
// A call carries its context's deadline; a server drops a request whose
// deadline passed, and a caller that gets no reply in time returns a
// *NoReplyError (which matches context.DeadlineExceeded) saying whether
// anybody took the call. A handler's error comes back as an *Error with the
// same text and a Code that errors.Is matches; a panicking handler becomes
// a CodePanic error.
//
// # Streams
//
// Events go on streams, "module/stream", kept in Redis streams bounded to
// about Options.StreamMaxLen events. Stream.Publish appends one;
// Stream.Events yields them in order and can resume after the last ID a
// subscriber saw.
//
// The Redis keys and JSON documents are specified in docs/bus.md, so a
// module written in another language can join the bus.
package bus
