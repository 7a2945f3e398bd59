package bus

import "context"

// The adapters below turn plain functions (typically method values such as
// m.NodeID) into Handlers, decoding each argument into the parameter's
// type. A function takes the call's context first, then its arguments, and
// returns a result and an error (FuncN) or an error only (ProcN):
//
//	srv.Handle("identityd/manager@1.0", bus.Methods{
//		"NodeID": bus.Func0(m.NodeID), // func(context.Context) (uint64, error)
//		"Sign":   bus.Func1(m.Sign),   // func(context.Context, []byte) ([]byte, error)
//		"Reload": bus.Proc0(m.Reload), // func(context.Context) error
//	})

// Func0 adapts a function of no argument with a result.
func Func0[R any](f func(context.Context) (R, error)) Handler {
	return func(ctx context.Context, args Args) (any, error) {
		if err := args.Decode(); err != nil {
			return nil, err
		}
		return result(f(ctx))
	}
}

// Func1 adapts a function of one argument with a result.
func Func1[A, R any](f func(context.Context, A) (R, error)) Handler {
	return func(ctx context.Context, args Args) (any, error) {
		var a A
		if err := args.Decode(&a); err != nil {
			return nil, err
		}
		return result(f(ctx, a))
	}
}

// Func2 adapts a function of two arguments with a result.
func Func2[A, B, R any](f func(context.Context, A, B) (R, error)) Handler {
	return func(ctx context.Context, args Args) (any, error) {
		var (
			a A
			b B
		)
		if err := args.Decode(&a, &b); err != nil {
			return nil, err
		}
		return result(f(ctx, a, b))
	}
}

// Func3 adapts a function of three arguments with a result.
func Func3[A, B, C, R any](f func(context.Context, A, B, C) (R, error)) Handler {
	return func(ctx context.Context, args Args) (any, error) {
		var (
			a A
			b B
			c C
		)
		if err := args.Decode(&a, &b, &c); err != nil {
			return nil, err
		}
		return result(f(ctx, a, b, c))
	}
}

// Proc0 adapts a function of no argument and no result.
func Proc0(f func(context.Context) error) Handler {
	return Func0(func(ctx context.Context) (any, error) { return nil, f(ctx) })
}

// Proc1 adapts a function of one argument and no result.
func Proc1[A any](f func(context.Context, A) error) Handler {
	return Func1(func(ctx context.Context, a A) (any, error) { return nil, f(ctx, a) })
}

// Proc2 adapts a function of two arguments and no result.
func Proc2[A, B any](f func(context.Context, A, B) error) Handler {
	return Func2(func(ctx context.Context, a A, b B) (any, error) { return nil, f(ctx, a, b) })
}

// Proc3 adapts a function of three arguments and no result.
func Proc3[A, B, C any](f func(context.Context, A, B, C) error) Handler {
	return Func3(func(ctx context.Context, a A, b B, c C) (any, error) { return nil, f(ctx, a, b, c) })
}

// result drops the result of a failed call.
func result[R any](r R, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return r, nil
}
