package keys

import (
	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Point arithmetic on edwards25519 (-x² + y² = 1 + d x² y²) for
// Ed25519Key, with the extended coordinates and formulas of Hisil, Wong,
// Carter and Dawson, "Twisted Edwards Curves Revisited" (2008), section
// 3.1 (a = -1): the exported edwards25519.Point has no operation that
// skips leading zero digits over several points, which is what halving
// the doublings needs.

// extPoint is (X : Y : Z : T): x = X/Z, y = Y/Z, xy = T/Z.
type extPoint struct{ X, Y, Z, T field.Element }

// projPoint is (X : Y : Z): x = X/Z, y = Y/Z.
type projPoint struct{ X, Y, Z field.Element }

// completedPoint is ((X : Z), (Y : T)): x = X/Z, y = Y/T, what an addition
// or a doubling yields before one of the conversions.
type completedPoint struct{ X, Y, Z, T field.Element }

// cachedPoint is a point prepared to be added: (Y+X, Y-X, Z, 2dT).
type cachedPoint struct{ YplusX, YminusX, Z, T2d field.Element }

// affinePoint is a cachedPoint with Z = 1: (y+x, y-x, 2dxy).
type affinePoint struct{ YplusX, YminusX, T2d field.Element }

// extFromPoint converts from the edwards25519 package.
func extFromPoint(p *edwards25519.Point) *extPoint {
	X, Y, Z, T := p.ExtendedCoordinates()
	return &extPoint{X: *X, Y: *Y, Z: *Z, T: *T}
}

func projIdentity() *projPoint {
	p := &projPoint{}
	p.Y.One()
	p.Z.One()
	return p
}

func (e *extPoint) proj() *projPoint { return &projPoint{X: e.X, Y: e.Y, Z: e.Z} }

func (e *extPoint) fromCompleted(c *completedPoint) {
	e.X.Multiply(&c.X, &c.T)
	e.Y.Multiply(&c.Y, &c.Z)
	e.Z.Multiply(&c.Z, &c.T)
	e.T.Multiply(&c.X, &c.Y)
}

func (p *projPoint) fromCompleted(c *completedPoint) {
	p.X.Multiply(&c.X, &c.T)
	p.Y.Multiply(&c.Y, &c.Z)
	p.Z.Multiply(&c.Z, &c.T)
}

func (e *extPoint) cached() cachedPoint {
	var q cachedPoint
	q.YplusX.Add(&e.Y, &e.X)
	q.YminusX.Subtract(&e.Y, &e.X)
	q.Z = e.Z
	q.T2d.Multiply(&e.T, ed25519D2())
	return q
}

// affine normalizes e (one inversion).
func (e *extPoint) affine() affinePoint {
	var q affinePoint
	var zinv, x, y field.Element
	zinv.Invert(&e.Z)
	x.Multiply(&e.X, &zinv)
	y.Multiply(&e.Y, &zinv)
	q.YplusX.Add(&y, &x)
	q.YminusX.Subtract(&y, &x)
	q.T2d.Multiply(&x, &y)
	q.T2d.Multiply(&q.T2d, ed25519D2())
	return q
}

// bytes is the 32-byte encoding of p (RFC 8032 section 5.1.2): y, and
// the sign of x in the top bit.
func (p *projPoint) bytes() []byte {
	var zinv, x, y field.Element
	zinv.Invert(&p.Z)
	x.Multiply(&p.X, &zinv)
	y.Multiply(&p.Y, &zinv)
	out := y.Bytes()
	out[31] |= byte(x.IsNegative() << 7)
	return out
}

// double sets c = 2p (dbl-2008-hwcd).
func (c *completedPoint) double(p *projPoint) {
	var xx, yy, zz2, xpy field.Element
	xx.Square(&p.X)
	yy.Square(&p.Y)
	zz2.Square(&p.Z)
	zz2.Add(&zz2, &zz2)
	xpy.Add(&p.X, &p.Y)
	xpy.Square(&xpy)
	c.Y.Add(&yy, &xx)
	c.Z.Subtract(&yy, &xx)
	c.X.Subtract(&xpy, &c.Y)
	c.T.Subtract(&zz2, &c.Z)
}

// addCached sets c = e + q, or e - q when neg (add-2008-hwcd-3).
func (c *completedPoint) addCached(e *extPoint, q *cachedPoint, neg bool) {
	var zz2 field.Element
	zz2.Multiply(&e.Z, &q.Z)
	zz2.Add(&zz2, &zz2)
	c.add(e, &q.YplusX, &q.YminusX, &q.T2d, &zz2, neg)
}

// addAffine sets c = e + q, or e - q when neg.
func (c *completedPoint) addAffine(e *extPoint, q *affinePoint, neg bool) {
	var zz2 field.Element
	zz2.Add(&e.Z, &e.Z)
	c.add(e, &q.YplusX, &q.YminusX, &q.T2d, &zz2, neg)
}

// add is the sum of e and the point (ypx, ymx, t2d) whose Z times 2 Z(e)
// is zz2; -q has ypx and ymx swapped and t2d negated.
func (c *completedPoint) add(e *extPoint, ypx, ymx, t2d, zz2 *field.Element, neg bool) {
	var yplusx, yminusx, pp, mm, tt2d field.Element
	if neg {
		ypx, ymx = ymx, ypx
	}
	yplusx.Add(&e.Y, &e.X)
	yminusx.Subtract(&e.Y, &e.X)
	pp.Multiply(&yplusx, ypx)
	mm.Multiply(&yminusx, ymx)
	tt2d.Multiply(&e.T, t2d)
	c.X.Subtract(&pp, &mm)
	c.Y.Add(&pp, &mm)
	if neg {
		c.Z.Subtract(zz2, &tt2d)
		c.T.Add(zz2, &tt2d)
		return
	}
	c.Z.Add(zz2, &tt2d)
	c.T.Subtract(zz2, &tt2d)
}

// timesPow2 returns [2^n]e, n ≥ 1.
func (e *extPoint) timesPow2(n int) *extPoint {
	p := e.proj()
	var c completedPoint
	out := &extPoint{}
	for i := range n {
		c.double(p)
		if i == n-1 {
			out.fromCompleted(&c)
		} else {
			p.fromCompleted(&c)
		}
	}
	return out
}

// oddMultiples returns e, 3e, 5e, ..., (2n-1)e.
func (e *extPoint) oddMultiples(n int) []extPoint {
	var (
		c    completedPoint
		twoE extPoint
	)
	c.double(e.proj())
	twoE.fromCompleted(&c)
	twoEc := twoE.cached()
	out := make([]extPoint, n)
	out[0] = *e
	for j := 1; j < n; j++ {
		c.addCached(&out[j-1], &twoEc, false)
		out[j].fromCompleted(&c)
	}
	return out
}
