package api

import (
	"math"
	"math/big"
	"testing"
)

func TestCost(t *testing.T) {
	p := Prices{CRU: 100_000, MRU: 50_000, SRU: 1_000, HRU: 100, IPv4: 20_000}
	for _, tc := range []struct {
		r    Capacity
		want int64
	}{
		{Capacity{}, 0},
		{Capacity{CRU: 2, MRU: 4 << 30, SRU: 50 << 30, IPv4: 1}, 470_000},
		// One byte-hour of memory costs 50000/2^30 µTFT: rounded down once.
		{Capacity{MRU: 1}, 0},
		{Capacity{MRU: 1 << 30, SRU: (1 << 30) - 1}, 50_000 + 999},
		// Products far beyond int64 are exact, the total capped.
		{Capacity{MRU: math.MaxUint64}, 858_993_459_199_999},
		{Capacity{CRU: math.MaxUint64}, math.MaxInt64},
	} {
		if got := p.Cost(tc.r); got != tc.want {
			t.Errorf("Cost(%+v) = %d, want %d", tc.r, got, tc.want)
		}
	}
	huge := Prices{MRU: MaxPrice}
	if got := huge.Cost(Capacity{MRU: 1 << 50}); got != MaxPrice<<20 {
		t.Errorf("Cost at the largest price of 1 PiB = %d, want %d", got, int64(MaxPrice)<<20)
	}
	if got := (Prices{CRU: -5}).Cost(Capacity{CRU: 3}); got != 0 {
		t.Errorf("negative price: %d", got)
	}
}

func TestDiscount(t *testing.T) {
	for _, tc := range []struct {
		amount    int64
		percent   uint32
		rest, off int64
	}{
		{470_000, 50, 235_000, 235_000},
		{3, 50, 2, 1},
		{99, 0, 99, 0},
		{99, 100, 0, 99},
		{99, 150, 0, 99},
		{math.MaxInt64, 99, math.MaxInt64 - (math.MaxInt64/100*99 + 7*99/100), math.MaxInt64/100*99 + 7*99/100},
	} {
		rest, off := Discount(tc.amount, tc.percent)
		if rest != tc.rest || off != tc.off || rest+off != tc.amount {
			t.Errorf("Discount(%d, %d) = %d, %d; want %d, %d", tc.amount, tc.percent, rest, off, tc.rest, tc.off)
		}
	}
}

// bigCost is Cost written plainly with math/big: the oracle of FuzzCost.
func bigCost(p Prices, r Capacity) int64 {
	term := func(n uint64, price int64) *big.Int {
		if price <= 0 {
			return new(big.Int)
		}
		return new(big.Int).Mul(new(big.Int).SetUint64(n), big.NewInt(price))
	}
	b := term(r.MRU, p.MRU)
	b.Add(b, term(r.SRU, p.SRU))
	b.Add(b, term(r.HRU, p.HRU))
	b.Quo(b, big.NewInt(1<<30))
	b.Add(b, term(r.CRU, p.CRU))
	b.Add(b, term(r.IPv4, p.IPv4))
	if !b.IsInt64() {
		return math.MaxInt64
	}
	return b.Int64()
}

// FuzzCost checks Cost and Discount against math/big over any prices and
// resources.
func FuzzCost(f *testing.F) {
	f.Add(int64(100_000), int64(50_000), int64(1_000), int64(100), int64(20_000), uint64(2), uint64(4<<30), uint64(50<<30), uint64(0), uint64(1), uint32(50))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(-1),
		uint64(math.MaxUint64), uint64(math.MaxUint64), uint64(math.MaxUint64), uint64(math.MaxUint64), uint64(7), uint32(100))
	f.Add(int64(1), int64(1), int64(0), int64(3), int64(0), uint64(0), uint64(1<<30-1), uint64(1), uint64(1<<62), uint64(0), uint32(33))
	f.Fuzz(func(t *testing.T, pc, pm, ps, ph, pi int64, c, m, s, h, i uint64, pct uint32) {
		p := Prices{CRU: pc, MRU: pm, SRU: ps, HRU: ph, IPv4: pi}
		r := Capacity{CRU: c, MRU: m, SRU: s, HRU: h, IPv4: i}
		got, want := p.Cost(r), bigCost(p, r)
		if got != want {
			t.Fatalf("Cost(%+v, %+v) = %d, math/big says %d", p, r, got, want)
		}
		rest, off := Discount(got, pct)
		o := new(big.Int).Mul(big.NewInt(got), big.NewInt(int64(min(pct, 100))))
		o.Quo(o, big.NewInt(100))
		if got <= 0 || pct == 0 {
			o.SetInt64(0)
		}
		if off != o.Int64() || rest+off != got {
			t.Fatalf("Discount(%d, %d) = %d, %d; math/big says off %d", got, pct, rest, off, o.Int64())
		}
	})
}
