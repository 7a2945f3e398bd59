package api

import (
	"math"
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
