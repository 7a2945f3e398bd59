package api

import (
	"math"
	"math/bits"
	"strconv"
	"time"
)

// MicroTFT is one TFT in µTFT, the unit of every amount: amounts are
// integers end to end, no float ever holds money.
const MicroTFT = 1_000_000

// Prices are a farm's prices per hour, in µTFT: per logical CPU (CRU), per
// GiB of memory (MRU), SSD (SRU) and HDD (HRU) storage, and per public
// IPv4 address.
type Prices struct {
	CRU  int64 `json:"cru"`
	MRU  int64 `json:"mru"`
	SRU  int64 `json:"sru"`
	HRU  int64 `json:"hru"`
	IPv4 int64 `json:"ipv4"`
}

// MaxPrice bounds each price: 1,000,000 TFT per unit and hour, far above
// anything sensible, so that no bill overflows int64 for any capacity a
// node may register.
const MaxPrice = 1_000_000 * MicroTFT

// Cost is the price of one hour of r (CRU in logical CPUs, MRU, SRU and
// HRU in bytes, IPv4 in addresses) at p, in µTFT:
//
//	cru*p.cru + ipv4*p.ipv4 + floor((mru*p.mru + sru*p.sru + hru*p.hru) / 2^30)
//
// computed exactly (192-bit sums of 128-bit products, no overflow, no
// allocation), rounded down once. A total above math.MaxInt64 µTFT is
// capped there (beyond any balance). Negative prices count as zero.
func (p Prices) Cost(r Capacity) int64 {
	var bytes u192
	bytes.addProduct(r.MRU, p.MRU)
	bytes.addProduct(r.SRU, p.SRU)
	bytes.addProduct(r.HRU, p.HRU)
	total := bytes.shr30() // floor division by 2^30 bytes (GiB, the unit of these prices)
	total.addProduct(r.CRU, p.CRU)
	total.addProduct(r.IPv4, p.IPv4)
	if total.hi != 0 || total.mid != 0 || total.lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(total.lo)
}

// u192 is an unsigned 192-bit integer: room for the sum of a few 128-bit
// products.
type u192 struct{ hi, mid, lo uint64 }

// addProduct adds n*price (a negative price counts as zero).
func (u *u192) addProduct(n uint64, price int64) {
	if price <= 0 {
		return
	}
	phi, plo := bits.Mul64(n, uint64(price))
	var c uint64
	u.lo, c = bits.Add64(u.lo, plo, 0)
	u.mid, c = bits.Add64(u.mid, phi, c)
	u.hi += c
}

// shr30 is u >> 30.
func (u u192) shr30() u192 {
	return u192{hi: u.hi >> 30, mid: u.mid>>30 | u.hi<<34, lo: u.lo>>30 | u.mid<<34}
}

// Discount is amount reduced by percent (0..100), the reduction rounded
// down: what remains is amount - floor(amount*percent/100).
func Discount(amount int64, percent uint32) (rest, off int64) {
	if percent == 0 || amount <= 0 {
		return amount, 0
	}
	if percent > 100 {
		percent = 100
	}
	hi, lo := bits.Mul64(uint64(amount), uint64(percent)) // < 2^70: hi < 100
	q, _ := bits.Div64(hi, lo, 100)
	off = int64(q)
	return amount - off, off
}

// PricingEntry is one price setting of a farm: the prices and when the
// farmer set them.
type PricingEntry struct {
	SetAt  time.Time `json:"set_at"`
	Prices Prices    `json:"prices"`
}

// FarmPricing is the answer of GET /farms/{farm_id}/pricing.
type FarmPricing struct {
	FarmID uint64 `json:"farm_id"`
	// Current is what a contract created now pays (the latest setting;
	// all zero when the farm never set prices: it is free).
	Current Prices `json:"current"`
	// Effective is what contracts older than the notice period pay now
	// (the latest setting at least NoticeSeconds old).
	Effective Prices `json:"effective"`
	// Scheduled are the settings younger than the notice period, with
	// when each takes effect for existing contracts, oldest first.
	Scheduled []ScheduledPrices `json:"scheduled"`
	// History is every setting, newest first (at most 100).
	History []PricingEntry `json:"history"`
	// NoticeSeconds is the registrar's notice period.
	NoticeSeconds int64 `json:"notice_seconds"`
}

// ScheduledPrices is a price change not yet in effect for existing
// contracts.
type ScheduledPrices struct {
	PricingEntry
	EffectiveAt time.Time `json:"effective_at"`
}

// SLA is a farm's uptime promise: a period in which a node was online less
// than UptimePercent of the hour is billed DiscountPercent less. The zero
// SLA promises nothing.
type SLA struct {
	UptimePercent   uint32 `json:"uptime_percent"`
	DiscountPercent uint32 `json:"discount_percent"`
}

// Contract types.
const (
	// ContractNode reserves resources on a node for one deployment.
	ContractNode = "node"
	// ContractRent takes a whole node.
	ContractRent = "rent"
)

// Contract states.
const (
	// StateActive: billed each hour; the node runs its workloads.
	StateActive = "active"
	// StateGrace: the twin's balance went below zero; not billed, the node
	// pauses the workloads until a credit puts it back to active.
	StateGrace = "grace"
	// StateDeleted is final: the node removes the workloads.
	StateDeleted = "deleted"
)

// Reasons a contract was deleted.
const (
	// ReasonCancelled: its twin cancelled it.
	ReasonCancelled = "cancelled"
	// ReasonGraceExpired: it stayed in grace longer than the grace period.
	ReasonGraceExpired = "grace_expired"
	// ReasonNodeRemoved: its node left the grid.
	ReasonNodeRemoved = "node_removed"
)

// Contract is an agreement between a twin and a node: a node contract
// reserves Resources for the deployment whose hash is DeploymentHash, a
// rent contract takes the whole node.
type Contract struct {
	ContractID     uint64     `json:"contract_id"`
	TwinID         uint64     `json:"twin_id"`
	NodeID         uint64     `json:"node_id"`
	Type           string     `json:"type"`
	DeploymentHash string     `json:"deployment_hash,omitempty"`
	Resources      Capacity   `json:"resources"`
	State          string     `json:"state"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	GraceSince     *time.Time `json:"grace_since,omitempty"`
	DeletedAt      *time.Time `json:"deleted_at,omitempty"`
	DeletedReason  string     `json:"deleted_reason,omitempty"`
	// BilledUntil is the end of the last period billed (the start of the
	// next one to bill).
	BilledUntil time.Time `json:"billed_until"`
}

// MaxDeploymentHashLen bounds Contract.DeploymentHash (hex text).
const MaxDeploymentHashLen = 128

// CreateContractRequest is the body of POST /contracts. A node contract
// gives DeploymentHash and Resources; a rent contract neither.
type CreateContractRequest struct {
	Type           string    `json:"type"`
	NodeID         uint64    `json:"node_id"`
	DeploymentHash string    `json:"deployment_hash,omitempty"`
	Resources      *Capacity `json:"resources,omitempty"`
}

// UpdateContractRequest is the body of PATCH /contracts/{contract_id}: nil
// fields are left unchanged.
type UpdateContractRequest struct {
	DeploymentHash *string   `json:"deployment_hash,omitempty"`
	Resources      *Capacity `json:"resources,omitempty"`
}

// CreditRequest is the body of POST /accounts/{twin_id}/credit. Reference
// makes the credit idempotent: a repeat with the same reference and amount
// changes nothing.
type CreditRequest struct {
	Amount    int64  `json:"amount"`
	Reference string `json:"reference"`
}

// MaxReferenceLen bounds CreditRequest.Reference.
const MaxReferenceLen = 200

// Balance is an account's balance in µTFT.
type Balance struct {
	Account string `json:"account"`
	Balance int64  `json:"balance"`
}

// Ledger accounts are "twin:N", "farm:N" or "external" (money entering
// the grid, e.g. a payment).
const (
	AccountTwin     = "twin"
	AccountFarm     = "farm"
	AccountExternal = "external"
)

// AccountName is the ledger name of an account: "twin:5", "farm:2",
// "external".
func AccountName(kind string, id uint64) string {
	if kind == AccountExternal {
		return kind
	}
	return kind + ":" + strconv.FormatUint(id, 10)
}

// Ledger line kinds.
const (
	// KindBill: a period of a contract (twin −x, farm +x).
	KindBill = "bill"
	// KindSLADiscount: the part of a bill given back under the farm's SLA
	// (twin +d, farm −d).
	KindSLADiscount = "sla_discount"
	// KindCredit: money added to a twin (external −x, twin +x).
	KindCredit = "credit"
)

// LedgerLine is one line of the double-entry ledger: the lines of each
// bill or credit sum to zero, and an account's balance is the sum of its
// lines.
type LedgerLine struct {
	ID          uint64     `json:"id"`
	Time        time.Time  `json:"time"`
	PeriodStart *time.Time `json:"period_start,omitempty"`
	ContractID  uint64     `json:"contract_id,omitempty"`
	Account     string     `json:"account"`
	Amount      int64      `json:"amount"`
	Kind        string     `json:"kind"`
	Reference   string     `json:"reference,omitempty"`
}

// Usage is what one contract used during one period, as its node reports
// it: CRU in logical CPUs, MRU, SRU and HRU in bytes, IPv4 in addresses,
// each held for the whole hour (a node reports the most it held).
type Usage struct {
	ContractID uint64 `json:"contract_id"`
	Capacity
}

// UsageReport is the body of POST /nodes/{node_id}/usage: what the node's
// contracts used during the hour starting at PeriodStart (UTC, on the
// hour).
type UsageReport struct {
	PeriodStart time.Time `json:"period_start"`
	Contracts   []Usage   `json:"contracts"`
}

// MaxUsageContracts bounds the contracts of one UsageReport.
const MaxUsageContracts = 1000

// Period is the billing period (UTC hour) containing t.
func Period(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
