package integration_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestCheapestZone: a spot Workstation that names no zone lands in the zone
// with the lowest spot price, says so, and gets its drive volume there.
func TestCheapestZone(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	zones := h.OfferedZones("t3.large")
	for _, z := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		if !slices.Contains(zones, z) {
			t.Fatalf("moto does not offer t3.large in %s (offers %v)", z, zones)
		}
	}
	// Moto reports the same fake price everywhere: price every zone it offers,
	// so that us-east-1b is the one cheapest.
	prices := map[string]string{"us-east-1a": "0.0310", "us-east-1b": "0.0120", "us-east-1c": "0.0250"}
	for _, z := range zones {
		if _, ok := prices[z]; !ok {
			prices[z] = "0.0900"
		}
		h.Proxy.SetSpotPrice("t3.large", z, prices[z])
	}
	const want = "us-east-1b"
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))

	ws := h.Workstation("box")
	st := ws.Status
	if st.AvailabilityZone != want || st.InstanceType != "t3.large" || st.CapacityType != v1alpha1.CapacityTypeSpot {
		t.Fatalf("launched %s %s in %s, want Spot t3.large in %s", st.CapacityType, st.InstanceType, st.AvailabilityZone, want)
	}
	if st.SpotPrice != prices[want] {
		t.Fatalf("status.spotPrice = %q, want %q", st.SpotPrice, prices[want])
	}
	launched := harness.Condition(st.Conditions, v1alpha1.ConditionLaunched)
	if launched.Status != "True" || !strings.Contains(launched.Message, prices[want]) || !strings.Contains(launched.Message, want) {
		t.Fatalf("Launched = %s %q, want True naming %s and $%s", launched.Status, launched.Message, want, prices[want])
	}

	inst, ok := h.Instance(st.InstanceID)
	if !ok {
		t.Fatalf("instance %s is not in EC2", st.InstanceID)
	}
	if got := aws.ToString(inst.Placement.AvailabilityZone); got != want {
		t.Fatalf("instance %s is in %s in EC2, want %s", st.InstanceID, got, want)
	}
	if inst.InstanceLifecycle != ec2types.InstanceLifecycleTypeSpot {
		t.Fatalf("instance %s lifecycle = %q, want spot", st.InstanceID, inst.InstanceLifecycle)
	}
	xd := h.Drive("data")
	vol, ok := h.Volume(xd.Status.VolumeID)
	if !ok {
		t.Fatalf("drive volume %q is not in EC2", xd.Status.VolumeID)
	}
	if got := aws.ToString(vol.AvailabilityZone); got != want || xd.Status.AvailabilityZone != want {
		t.Fatalf("drive volume in %s (status says %s), want %s", got, xd.Status.AvailabilityZone, want)
	}
	if len(vol.Attachments) != 1 || aws.ToString(vol.Attachments[0].InstanceId) != st.InstanceID {
		t.Fatalf("drive volume attachments = %+v, want attached to %s", vol.Attachments, st.InstanceID)
	}
}

// TestCapacityFallback: when the cheapest offering has no capacity, the next
// one is launched, the full one is avoided, and the skip is reported.
func TestCapacityFallback(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	const zone = "us-east-1a"
	h.Proxy.SetSpotPrice("m5.large", zone, "0.0150")
	h.Proxy.SetSpotPrice("t3.large", zone, "0.0250")
	full := h.Proxy.Inject(faultproxy.Rule{
		Action: "RunInstances",
		Match:  func(f url.Values) bool { return f.Get("InstanceType") == "m5.large" },
		Fault:  faultproxy.InsufficientCapacity(),
	})
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"m5.large", "t3.large"}, zone))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))

	if full.Fired() == 0 {
		t.Fatal("RunInstances was never tried with m5.large, so the fallback was not exercised")
	}
	ws := h.Workstation("box")
	if ws.Status.InstanceType != "t3.large" || ws.Status.AvailabilityZone != zone {
		t.Fatalf("launched %s in %s, want t3.large in %s", ws.Status.InstanceType, ws.Status.AvailabilityZone, zone)
	}
	var types []string
	for _, i := range h.WorkstationInstances("box") {
		types = append(types, string(i.InstanceType))
	}
	if !slices.Equal(types, []string{"t3.large"}) {
		t.Fatalf("instances of the Workstation in EC2 have types %v, want exactly one t3.large", types)
	}

	const skipped = "Spot/m5.large/" + zone
	i := slices.IndexFunc(ws.Status.AvoidOfferings, func(a v1alpha1.AvoidedOffering) bool { return a.Offering == skipped })
	if i < 0 {
		t.Fatalf("status.avoidOfferings = %+v, want %s", ws.Status.AvoidOfferings, skipped)
	}
	if a := ws.Status.AvoidOfferings[i]; a.Reason != "InsufficientInstanceCapacity" || !a.Until.After(time.Now()) {
		t.Fatalf("avoided offering = %+v, want reason InsufficientInstanceCapacity and a future until", a)
	}
	launched := harness.Condition(ws.Status.Conditions, v1alpha1.ConditionLaunched)
	if !strings.Contains(launched.Message, "skipped "+skipped) {
		t.Fatalf("Launched message %q does not mention the skipped %s", launched.Message, skipped)
	}
	h.Eventually(10*time.Second, "a NoCapacity event naming m5.large", func() (bool, string) {
		return h.FindEvent("Workstation", "box", v1alpha1.ReasonNoCapacity, skipped, "InsufficientInstanceCapacity")
	})
	if n := h.Proxy.Count("RunInstances"); n != full.Fired()+1 {
		t.Fatalf("RunInstances calls = %d, want the %d refused ones and one launch", n, full.Fired())
	}
}

// TestXenTypesSkipped (issue #17): a type whose EBS volumes are not NVMe
// (moto's m4.large, as on EC2) is never placed, however cheap: the
// bootstrap finds the drive by its NVMe serial.
func TestXenTypesSkipped(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	if len(h.OfferedZones("m4.large")) == 0 {
		t.Fatal("moto offers no m4.large; the test proves nothing")
	}
	for _, z := range h.OfferedZones("m4.large") {
		h.Proxy.SetSpotPrice("m4.large", z, "0.0010")
	}
	for _, z := range h.OfferedZones("t3.large") {
		h.Proxy.SetSpotPrice("t3.large", z, "0.0500")
	}
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"m4.large", "t3.large"}))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	if got := h.Workstation("box").Status.InstanceType; got != "t3.large" {
		t.Fatalf("placed on %s, want t3.large (m4.large has no NVMe EBS)", got)
	}
}
