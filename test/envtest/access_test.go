package testenv

import (
	"fmt"
	"testing"
)

// TestAccessValidation: spec.access takes IPv4 CIDRs only, and only ports
// its containers declare; a class's allowedAccessCIDRs takes IPv4 CIDRs.
func TestAccessValidation(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	const jupyter = `driveRef: {name: home}, instanceTypes: [t3.large], containers: [{name: jupyter, image: jupyter/base-notebook, ports: [{containerPort: 8888, hostPort: 80}]}]`
	for i, tc := range []struct {
		name, kind, spec string
		want             []string // empty: accepted
	}{
		{"ssh only", kindWS, `{` + jupyter + `, access: {allowedCIDRs: [203.0.113.0/24]}}`, nil},
		{"declared port", kindWS, `{` + jupyter + `, access: {allowedCIDRs: [203.0.113.7/32, 10.0.0.0/8], ports: [{container: jupyter, containerPort: 8888}]}}`, nil},
		{"host bits set", kindWS, `{` + jupyter + `, access: {allowedCIDRs: [10.1.2.3/16]}}`, nil},
		{"not a CIDR", kindWS, `{` + jupyter + `, access: {allowedCIDRs: [203.0.113.7]}}`, []string{"allowedCIDRs: each must be an IPv4 CIDR"}},
		{"IPv6", kindWS, `{` + jupyter + `, access: {allowedCIDRs: ["2001:db8::/32"]}}`, []string{"allowedCIDRs: each must be an IPv4 CIDR"}},
		{"no CIDRs", kindWS, `{` + jupyter + `, access: {allowedCIDRs: []}}`, []string{"spec.access.allowedCIDRs"}},
		{"duplicate CIDR", kindWS, `{` + jupyter + `, access: {allowedCIDRs: [10.0.0.0/8, 10.0.0.0/8]}}`, []string{"Duplicate value"}},
		{"undeclared port", kindWS, `{` + jupyter + `, access: {allowedCIDRs: [10.0.0.0/8], ports: [{container: jupyter, containerPort: 80}]}}`, []string{"access.ports: each must be a port declared in spec.containers"}},
		{"unknown container", kindWS, `{` + jupyter + `, access: {allowedCIDRs: [10.0.0.0/8], ports: [{container: lab, containerPort: 8888}]}}`, []string{"access.ports: each must be a port declared in spec.containers"}},
		{"ports without containers", kindWS, `{driveRef: {name: home}, instanceTypes: [t3.large], access: {allowedCIDRs: [10.0.0.0/8], ports: [{container: jupyter, containerPort: 8888}]}}`, []string{"access.ports: each must be a port declared in spec.containers"}},
		{"class CIDRs", kindWSC, `{namespaceSelector: {}, allowedAccessCIDRs: [10.0.0.0/8, 203.0.113.0/24]}`, nil},
		{"class bad CIDR", kindWSC, `{namespaceSelector: {}, allowedAccessCIDRs: [office]}`, []string{"allowedAccessCIDRs: each must be an IPv4 CIDR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objNS := ns
			if tc.kind == kindWSC {
				objNS = ""
			}
			obj := newObject(t, tc.kind, objNS, fmt.Sprintf("access-%d-%s", i, ns), tc.spec)
			err := e.Client.Create(testCtx(t), obj)
			if err == nil {
				t.Cleanup(func() { _ = e.Client.Delete(testCtx(t), obj) })
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			assertInvalid(t, err, tc.want)
		})
	}
}
