package store

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

func TestCoveredSeconds(t *testing.T) {
	h := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return h.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name string
		ivs  [][2]time.Time
		want int64
	}{
		{"none", nil, 0},
		{"the whole hour and more", [][2]time.Time{{at(-90), at(90)}}, 3600},
		{"overlapping sessions count once", [][2]time.Time{{at(10), at(40)}, {at(-5), at(20)}, {at(30), at(45)}}, 45 * 60},
		{"a gap", [][2]time.Time{{at(50), at(70)}, {at(0), at(10)}}, 20 * 60},
		{"outside the hour", [][2]time.Time{{at(-30), at(0)}, {at(60), at(80)}}, 0},
		{"nested", [][2]time.Time{{at(0), at(50)}, {at(5), at(10)}}, 50 * 60},
	} {
		if got := coveredSeconds(tc.ivs, h, h.Add(time.Hour)); got != tc.want {
			t.Errorf("%s: %d s, want %d", tc.name, got, tc.want)
		}
	}
}

// TestSumByAccountOverflow: the lines of one write adding up past the
// int64 range for an account (a farm billed for many contracts at the
// largest prices) fail as ErrInvalid instead of wrapping around.
func TestSumByAccountOverflow(t *testing.T) {
	big := ledgerLine{acct: api.AccountFarm, acctID: 1, amount: math.MaxInt64 / 2}
	if _, err := sumByAccount([]ledgerLine{big, big, {acct: api.AccountFarm, acctID: 1, amount: 2}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("sum past MaxInt64: %v, want ErrInvalid", err)
	}
	neg := ledgerLine{acct: api.AccountTwin, acctID: 1, amount: math.MinInt64 / 2}
	if _, err := sumByAccount([]ledgerLine{neg, neg, {acct: api.AccountTwin, acctID: 1, amount: -1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("sum past MinInt64: %v, want ErrInvalid", err)
	}
	sums, err := sumByAccount([]ledgerLine{big, big, {acct: api.AccountFarm, acctID: 1, amount: 1}, neg})
	if err != nil || len(sums) != 2 || sums[0].amount != math.MaxInt64 || sums[1].amount != math.MinInt64/2 {
		t.Fatalf("sums within range: %+v, %v", sums, err)
	}
}
