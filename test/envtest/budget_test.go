package testenv

import (
	"fmt"
	"testing"
)

var invalidBudgetCases = []invalidCase{
	{name: "empty budget", kind: kindWSC, spec: `{` + wsc + `, budget: {}}`, want: []string{"spec.budget", "at least 1"}},
	{name: "negative", kind: kindWSC, spec: `{` + wsc + `, budget: {monthlyUSDPerNamespace: "-5"}}`, want: []string{"spec.budget.monthlyUSDPerNamespace", "should match"}},
	{name: "not a number", kind: kindWSC, spec: `{` + wsc + `, budget: {monthlyUSDPerWorkstation: "ten"}}`, want: []string{"spec.budget.monthlyUSDPerWorkstation", "should match"}},
	{name: "seven decimals", kind: kindWSC, spec: `{` + wsc + `, budget: {monthlyUSDPerWorkstation: "0.0000001"}}`, want: []string{"spec.budget.monthlyUSDPerWorkstation", "should match"}},
}

// TestBudgetValidation: the API server rejects an empty budget and amounts
// that are not decimal USD, and accepts either limit or both.
func TestBudgetValidation(t *testing.T) {
	e := sharedEnv(t)
	for i, tc := range invalidBudgetCases {
		t.Run(tc.name, func(t *testing.T) {
			obj := newObject(t, tc.kind, "", fmt.Sprintf("invalid-budget-%d", i), tc.spec)
			err := e.Client.Create(testCtx(t), obj)
			if err == nil {
				_ = e.Client.Delete(testCtx(t), obj)
			}
			assertInvalid(t, err, tc.want)
		})
	}
	for i, budget := range []string{`monthlyUSDPerNamespace: "200"`, `monthlyUSDPerWorkstation: "0.5"`, `monthlyUSDPerNamespace: "1000.25", monthlyUSDPerWorkstation: "80"`} {
		cls := newObject(t, kindWSC, "", fmt.Sprintf("budget-%d", i), `{`+wsc+`, budget: {`+budget+`}}`)
		if err := e.Client.Create(testCtx(t), cls); err != nil {
			t.Fatalf("budget {%s} was rejected: %v", budget, err)
		}
		_ = e.Client.Delete(testCtx(t), cls)
	}
}
