package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// TestContractsAgainstRegistrar walks the contract and billing methods
// through the real registrar: prices, SLA, credit, balance, a node
// contract, the node's view and usage report, update, cancel, ledgers.
func TestContractsAgainstRegistrar(t *testing.T) {
	url := startRegistrar(t, nil)
	ctx := context.Background()
	admin, farmer, node, user := newClient(t, url, keys.Ed25519), newClient(t, url, keys.Ed25519), newClient(t, url, keys.Ed25519), newClient(t, url, keys.Sr25519)
	anon := newClient(t, url, "")
	for _, c := range []*client.Client{admin, farmer, node, user} {
		try(c.CreateAccount(ctx, client.AccountOptions{})).must(t)
	}
	farmID := try(farmer.CreateFarm(ctx, client.NewFarm{Name: "pricey"})).must(t)
	nodeID := try(node.RegisterNode(ctx, api.RegisterNodeRequest{
		FarmID:     farmID,
		Resources:  api.Resources{CRU: 8, MRU: 16 << 30, SRU: 512 << 30},
		Location:   api.Location{Country: "Belgium", City: "Ghent", Latitude: "51.05", Longitude: "3.72"},
		Interfaces: []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPList{"10.0.0.2/24"}}},
	})).must(t)

	fp := try(farmer.SetFarmPricing(ctx, farmID, api.Prices{CRU: 1000, MRU: 500})).must(t)
	if fp.Current.CRU != 1000 || len(fp.History) != 1 || fp.NoticeSeconds != 7*24*3600 {
		t.Fatalf("pricing %+v", fp)
	}
	if got := try(anon.FarmPricing(ctx, farmID)).must(t); got.Current != fp.Current {
		t.Fatalf("FarmPricing %+v", got)
	}
	_, err := user.SetFarmPricing(ctx, farmID, api.Prices{})
	wantIs(t, err, client.ErrUnauthorized)
	if err := farmer.SetFarmSLA(ctx, farmID, api.SLA{UptimePercent: 95, DiscountPercent: 20}); err != nil {
		t.Fatal(err)
	}
	if sla := try(anon.FarmSLA(ctx, farmID)).must(t); sla.UptimePercent != 95 || sla.DiscountPercent != 20 {
		t.Fatalf("FarmSLA %+v", sla)
	}

	userTwin := user.KnownTwinID()
	if b := try(admin.Credit(ctx, userTwin, 5_000_000, "invoice-1")).must(t); b.Balance != 5_000_000 || b.Account != api.AccountName(api.AccountTwin, userTwin) {
		t.Fatalf("Credit %+v", b)
	}
	_, err = user.Credit(ctx, userTwin, 1, "self")
	wantIs(t, err, client.ErrUnauthorized)
	_, err = admin.Credit(ctx, userTwin, 1, "invoice-1")
	wantIs(t, err, client.ErrConflict)
	if b := try(user.Balance(ctx, 0)).must(t); b.Balance != 5_000_000 {
		t.Fatalf("Balance %+v", b)
	}

	c := try(user.CreateNodeContract(ctx, nodeID, "beef", api.Capacity{CRU: 2, MRU: 2 << 30})).must(t)
	if c.TwinID != userTwin || c.State != api.StateActive {
		t.Fatalf("contract %+v", c)
	}
	_, err = user.CreateNodeContract(ctx, nodeID, "beef", api.Capacity{CRU: 64})
	wantIs(t, err, client.ErrInvalid)
	if got := try(anon.Contract(ctx, c.ContractID)).must(t); got.DeploymentHash != "beef" {
		t.Fatalf("Contract %+v", got)
	}
	if l := try(anon.ListContracts(ctx, client.ContractFilter{TwinID: userTwin, State: api.StateActive})).must(t); len(l) != 1 {
		t.Fatalf("ListContracts %+v", l)
	}
	if l := try(node.NodeContracts(ctx, nodeID)).must(t); len(l) != 1 || l[0].ContractID != c.ContractID {
		t.Fatalf("NodeContracts %+v", l)
	}
	hash := "cafe"
	if up := try(user.UpdateContract(ctx, c.ContractID, api.UpdateContractRequest{DeploymentHash: &hash})).must(t); up.DeploymentHash != "cafe" {
		t.Fatalf("UpdateContract %+v", up)
	}
	period := api.Period(time.Now()).Add(-time.Hour)
	use := []api.Usage{{ContractID: c.ContractID, Capacity: api.Capacity{CRU: 1}}}
	for range 2 {
		if err := node.ReportUsage(ctx, nodeID, period, use); err != nil {
			t.Fatal(err)
		}
	}
	use[0].CRU = 2
	wantIs(t, node.ReportUsage(ctx, nodeID, period, use), client.ErrConflict)
	wantIs(t, user.ReportUsage(ctx, nodeID, period, use), client.ErrUnauthorized)
	if del := try(user.CancelContract(ctx, c.ContractID)).must(t); del.State != api.StateDeleted || del.DeletedReason != api.ReasonCancelled {
		t.Fatalf("CancelContract %+v", del)
	}
	if l := try(user.Ledger(ctx, 0, 0, 0)).must(t); len(l) != 1 || l[0].Kind != api.KindCredit || l[0].Amount != 5_000_000 {
		t.Fatalf("Ledger %+v", l)
	}
	if l := try(farmer.FarmLedger(ctx, farmID, 0, 0)).must(t); len(l) != 0 {
		t.Fatalf("FarmLedger %+v", l)
	}
	_, err = user.FarmLedger(ctx, farmID, 0, 0)
	wantIs(t, err, client.ErrUnauthorized)
}
