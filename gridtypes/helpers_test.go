package gridtypes

import "encoding/json"

// raw is a workload's data as written.
func raw(s string) json.RawMessage { return json.RawMessage(s) }

// sample is a deployment of twin with one workload of every type, listed
// out of processing order on purpose.
func sample(twin uint64) Deployment {
	return Deployment{
		TwinID:      twin,
		Description: "every type",
		Workloads: []Workload{
			{Name: "logs", Type: ZLogsType, Data: raw(`{"zmachine":"vm","output":"ws://127.0.0.1:9/logs"}`)},
			{Name: "vm", Type: ZMachineLightType, Data: raw(`{"flist":"https://hub.grid.tf/tf-official-apps/base:latest.flist","entrypoint":"/sbin/zinit init","env":{"SSH_KEY":"ssh-ed25519 AAAA"},"compute_capacity":{"cpu":2,"memory":1073741824},"size":10737418240,"network":{"interfaces":[{"network":"net","ip":"10.20.1.5"}],"public_ip":"ip"},"mounts":[{"name":"disk","mountpoint":"/data"},{"name":"vol","mountpoint":"/vol"}],"corex":false}`)},
			{Name: "net", Type: NetworkLightType, Data: raw(`{"subnet":"10.20.1.0/24"}`)},
			{Name: "disk", Type: ZMountType, Data: raw(`{"size":1073741824}`)},
			{Name: "ip", Type: PublicIPv4Type, Data: raw(`{}`)},
			{Name: "vol", Type: VolumeType, Data: raw(`{"size":2147483648}`)},
			{Name: "fs", Type: QuantumSafeFSType, Data: raw(`{"cache":1073741824,"minimal_shards":2,"expected_shards":3,"redundant_groups":0,"redundant_nodes":0,"encryption_key":"4d778ba3216e4da4231540c92a55f06157cabba802f9b68fb0f78375d2e825af","compression":"snappy","metadata":{"prefix":"fs1","backends":[{"address":"[2001:db8::1]:9900","namespace":"meta1","password":"secret"}]},"groups":[{"backends":[{"address":"[2001:db8::2]:9900","namespace":"d1","password":""},{"address":"[2001:db8::3]:9900","namespace":"d2","password":""},{"address":"10.0.0.4:9900","namespace":"d3","password":""}]}]}`)},
		},
	}
}
