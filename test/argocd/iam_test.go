package argocd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const (
	policyPath     = docsDir + "/iam-policy.json"
	interfacesPath = "../../internal/cloud/interfaces.go"
	clusterTagKey  = "xdrive.io/cluster"
	// usableTagKey marks the security groups and key pairs an admin lets the installation launch with.
	usableTagKey = "xdrive.io/usable-by"
	clusterValue = "CLUSTER_NAME"
	// arnPrefix starts every ARN: the partition is a placeholder (aws, aws-us-gov, aws-cn).
	arnPrefix = "arn:PARTITION:"
)

// stringOrList is an IAM policy value that may be one string or a list.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

type statement struct {
	Sid       string                             `json:"Sid"`
	Effect    string                             `json:"Effect"`
	Action    stringOrList                       `json:"Action"`
	Resource  stringOrList                       `json:"Resource"`
	Condition map[string]map[string]stringOrList `json:"Condition"`
}

type policy struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

func loadPolicy(t *testing.T, path string) policy {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p policy
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s does not parse as an IAM policy: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s has trailing data", path)
	}
	return p
}

// condition returns the values of operator/key in a statement, or nil.
func (s statement) condition(operator, key string) []string {
	return s.Condition[operator][key]
}

func (s statement) name(i int) string {
	if s.Sid != "" {
		return s.Sid
	}
	return fmt.Sprintf("statement %d", i)
}

// destructive reports whether an action changes or removes an existing
// resource, and so must be limited to what the cluster owns.
func destructive(action string) bool {
	service, op, _ := strings.Cut(action, ":")
	if service != "ec2" {
		return false
	}
	for _, verb := range []string{"Delete", "Terminate", "Modify", "Detach", "Stop", "Reboot", "Attach", "Disassociate", "Replace", "Reset", "Authorize", "Revoke"} {
		if strings.HasPrefix(op, verb) {
			return true
		}
	}
	return false
}

// arnAccount returns the account field of an ARN (arn:partition:service:region:account:resource).
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// ownedOrAmazonSnapshot reports whether a statement limits snapshots to the
// installation's tag, or to snapshots Amazon owns (those of public AMIs).
func ownedOrAmazonSnapshot(s statement) bool {
	if len(s.Condition) != 1 || len(s.Condition["StringEquals"]) != 1 {
		return false
	}
	for _, key := range []string{"ec2:ResourceTag/" + clusterTagKey, "aws:ResourceTag/" + clusterTagKey} {
		if slices.Equal(s.condition("StringEquals", key), []string{clusterValue}) {
			return true
		}
	}
	return slices.Equal(s.condition("StringEquals", "ec2:Owner"), []string{"amazon"})
}

// checkPolicy returns every rule the policy breaks.
func checkPolicy(p policy) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if p.Version != "2012-10-17" {
		bad("Version is %q, want 2012-10-17", p.Version)
	}
	if len(p.Statement) == 0 {
		bad("no statements")
	}
	sids := map[string]bool{}
	for i, s := range p.Statement {
		n := s.name(i)
		if s.Sid == "" || sids[s.Sid] {
			bad("%s: every statement needs a unique Sid", n)
		}
		sids[s.Sid] = true
		if s.Effect != "Allow" {
			bad("%s: Effect %q, want Allow", n, s.Effect)
		}
		if len(s.Action) == 0 || len(s.Resource) == 0 {
			bad("%s: needs Action and Resource", n)
		}
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				bad("%s: wildcard action %s", n, a)
			}
		}
		for _, r := range s.Resource {
			if r != "*" && !strings.HasPrefix(r, arnPrefix) {
				bad("%s: resource %s does not start with %s: the partition differs in GovCloud and China", n, r, arnPrefix)
			}
			// A subnet shared from another account (a shared VPC) carries that account's ID.
			if strings.Contains(r, ":subnet/") && arnAccount(r) != "*" {
				bad("%s: subnet resource %s pins the account; subnets shared from a network account would be denied", n, r)
			}
			if r == "*" {
				for _, a := range s.Action {
					// pricing:GetProducts has no resources: it reads AWS's public price list.
					if !strings.HasPrefix(a, "ec2:Describe") && a != "pricing:GetProducts" {
						bad("%s: %s on Resource \"*\"; only Describe calls and the public price list may be unscoped", n, a)
					}
				}
			}
		}
		for _, a := range s.Action {
			switch {
			case destructive(a):
				if got := s.condition("StringEquals", "ec2:ResourceTag/"+clusterTagKey); !slices.Equal(got, []string{clusterValue}) {
					bad("%s: %s without StringEquals ec2:ResourceTag/%s = %s", n, a, clusterTagKey, clusterValue)
				}
				if slices.Contains(s.Resource, "*") {
					bad("%s: %s on Resource \"*\"", n, a)
				}
			case a == "ec2:CreateTags":
				got := append([]string(nil), s.condition("StringEquals", "ec2:CreateAction")...)
				sort.Strings(got)
				if !slices.Equal(got, []string{"CopySnapshot", "CreateSecurityGroup", "CreateSnapshot", "RunInstances"}) {
					bad("%s: ec2:CreateTags must be limited by ec2:CreateAction to RunInstances, CreateSnapshot, CopySnapshot and CreateSecurityGroup, got %v", n, got)
				}
			case creates(a):
				// New instances, volumes, snapshots and security groups must carry the
				// ownership tag; the resources launched from or into need no condition.
				for _, r := range s.Resource {
					created := strings.Contains(r, ":instance/") || strings.Contains(r, ":volume/")
					switch a {
					case "ec2:CreateSnapshot", "ec2:CopySnapshot":
						created = strings.Contains(r, ":snapshot/")
					case "ec2:CreateSecurityGroup":
						created = strings.Contains(r, ":security-group/") || r == "*"
					}
					if created && !slices.Equal(s.condition("StringEquals", "aws:RequestTag/"+clusterTagKey), []string{clusterValue}) {
						bad("%s: %s creates %s without aws:RequestTag/%s = %s", n, a, r, clusterTagKey, clusterValue)
					}
				}
				if a == "ec2:CreateSnapshot" && slices.ContainsFunc(s.Resource, func(r string) bool { return strings.Contains(r, ":volume/") }) &&
					!slices.Equal(s.condition("StringEquals", "ec2:ResourceTag/"+clusterTagKey), []string{clusterValue}) {
					bad("%s: ec2:CreateSnapshot of volumes not owned by the cluster", n)
				}
			case a == "iam:PassRole":
				if !slices.Equal(s.condition("StringEquals", "iam:PassedToService"), []string{"ec2.amazonaws.com"}) {
					bad("%s: iam:PassRole without iam:PassedToService = ec2.amazonaws.com", n)
				}
				for _, r := range s.Resource {
					if strings.Contains(r, "*") {
						bad("%s: iam:PassRole on %s: pass only the roles of the WorkstationClasses' instance profiles, by name", n, r)
					}
				}
			}
			// A launch uses only images of Amazon or the account, and only the
			// installation's own security groups or those an admin tagged usable by it, and such key pairs.
			if a == "ec2:RunInstances" {
				for _, r := range s.Resource {
					switch {
					case strings.Contains(r, ":image/") || r == "*":
						if got := s.condition("StringEquals", "ec2:Owner"); len(got) == 0 || slices.ContainsFunc(got, func(o string) bool { return o != "amazon" && o != "ACCOUNT_ID" }) {
							bad("%s: ec2:RunInstances may use any image (%s): limit it by ec2:Owner to amazon and ACCOUNT_ID", n, r)
						}
					case strings.Contains(r, ":security-group/") || strings.Contains(r, ":key-pair/"):
						owned := slices.Equal(s.condition("StringEquals", "ec2:ResourceTag/"+clusterTagKey), []string{clusterValue})
						usable := slices.Equal(s.condition("StringEquals", "ec2:ResourceTag/"+usableTagKey), []string{clusterValue})
						if !owned && !usable || owned && strings.Contains(r, ":key-pair/") {
							bad("%s: ec2:RunInstances may use any %s: limit it by ec2:ResourceTag/%s (or, for groups, %s) = %s", n, r, usableTagKey, clusterTagKey, clusterValue)
						}
					}
				}
			}
			// A launch or volume restores a snapshot: only the installation's own (by tag), or Amazon's AMI snapshots.
			if a == "ec2:RunInstances" || a == "ec2:CreateVolume" {
				for _, r := range s.Resource {
					if (strings.Contains(r, ":snapshot/") || r == "*") && !ownedOrAmazonSnapshot(s) {
						bad("%s: %s may restore any snapshot (%s): limit it by ec2:ResourceTag/%s = %s", n, a, r, clusterTagKey, clusterValue)
					}
				}
			}
		}
		// An ec2 statement that both creates and destroys could not carry both conditions.
		if slices.ContainsFunc(s.Action, destructive) && slices.ContainsFunc(s.Action, creates) {
			bad("%s: mixes create and destroy actions", n)
		}
	}
	// Every instance, volume and snapshot a RunInstances may create must be
	// covered, or the launch fails with UnauthorizedOperation.
	var runResources []string
	for _, s := range p.Statement {
		if slices.Contains(s.Action, "ec2:RunInstances") {
			runResources = append(runResources, s.Resource...)
		}
	}
	for _, kind := range []string{"instance", "volume", "image", "snapshot", "subnet", "security-group", "network-interface", "key-pair"} {
		if !slices.ContainsFunc(runResources, func(r string) bool { return strings.Contains(r, ":"+kind+"/") }) {
			bad("ec2:RunInstances is not allowed on %s resources", kind)
		}
	}
	return problems
}

// creates reports whether an action makes a resource that must carry the ownership tag.
func creates(action string) bool {
	return action == "ec2:RunInstances" || action == "ec2:CreateSnapshot" || action == "ec2:CopySnapshot" || action == "ec2:CreateSecurityGroup"
}

func TestIAMPolicy(t *testing.T) {
	p := loadPolicy(t, policyPath)
	for _, problem := range checkPolicy(p) {
		t.Error(problem)
	}
	// A managed policy holds at most 6,144 characters, whitespace excluded.
	raw, _ := os.ReadFile(policyPath)
	compact := strings.Join(strings.Fields(string(raw)), "")
	if len(compact) > 6144 {
		t.Errorf("policy is %d characters without whitespace; a managed policy holds 6144", len(compact))
	}
}

// The checks must catch a policy that lets the operator delete anything.
func TestIAMPolicyCheckRejectsUnscopedDeletes(t *testing.T) {
	noCondition := func(s *statement) { s.Condition = nil }
	mutations := map[string]func(*policy){
		"condition removed": forAction("ec2:DeleteVolume", noCondition),
		"other cluster": forAction("ec2:TerminateInstances", func(s *statement) {
			s.Condition["StringEquals"]["ec2:ResourceTag/"+clusterTagKey] = stringOrList{"*"}
		}),
		"delete added to describe": func(p *policy) {
			p.Statement[0].Action = append(p.Statement[0].Action, "ec2:DeleteSnapshot")
		},
		"wildcard action": func(p *policy) {
			p.Statement = append(p.Statement, statement{Sid: "Extra", Effect: "Allow", Action: stringOrList{"ec2:*"}, Resource: stringOrList{"*"}})
		},
		"tagging anything":         forAction("ec2:CreateTags", noCondition),
		"untagged launches":        forAction("ec2:RunInstances", noCondition),
		"untagged security groups": forSid("CreateOnlyTaggedSecurityGroups", noCondition),
		"untagged copies":          forAction("ec2:CopySnapshot", noCondition),
		"rules of any group":       forAction("ec2:RevokeSecurityGroupIngress", noCondition),
		"deleting any group": forSid("ChangeAndDeleteOwnedSecurityGroups", func(s *statement) {
			s.Condition["StringEquals"]["ec2:ResourceTag/"+clusterTagKey] = stringOrList{"*"}
		}),
		"any snapshot restored": func(p *policy) {
			p.Statement = append(p.Statement, statement{Sid: "AnySnapshot", Effect: "Allow", Action: stringOrList{"ec2:RunInstances"},
				Resource: stringOrList{"arn:PARTITION:ec2:REGION::snapshot/*"}})
		},
		"snapshots of another installation": forSid("RunInstancesFromOwnedSnapshots", func(s *statement) {
			s.Condition["StringEquals"]["ec2:ResourceTag/"+clusterTagKey] = stringOrList{"*"}
		}),
		"snapshots of any owner": forSid("RunInstancesFromAmazonImageSnapshots", func(s *statement) {
			s.Condition["StringEquals"]["ec2:Owner"] = stringOrList{"ACCOUNT_ID"}
		}),
		"hard-coded partition": forSid("TerminateOwnedInstances", func(s *statement) {
			s.Resource = stringOrList{"arn:aws:ec2:REGION:ACCOUNT_ID:instance/*"}
		}),
		"subnet pinned to the account": forSid("RunInstancesReferencedResources", func(s *statement) {
			for i, r := range s.Resource {
				s.Resource[i] = strings.Replace(r, ":*:subnet/", ":ACCOUNT_ID:subnet/", 1)
			}
		}),
		"every role passed": forAction("iam:PassRole", func(s *statement) {
			s.Resource = stringOrList{"arn:PARTITION:iam::ACCOUNT_ID:role/xdrive-workstation-*"}
		}),
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			q := loadPolicy(t, policyPath)
			mutate(&q)
			if len(checkPolicy(q)) == 0 {
				t.Fatal("the policy check accepted a broken policy")
			}
		})
	}
}

// forSid changes the statement with this Sid; it fails the test if there is none.
func forSid(sid string, change func(*statement)) func(*policy) {
	return func(p *policy) {
		for i := range p.Statement {
			if p.Statement[i].Sid == sid {
				change(&p.Statement[i])
				return
			}
		}
		panic("no statement " + sid)
	}
}

// forAction changes every statement that allows action.
func forAction(action string, change func(*statement)) func(*policy) {
	return func(p *policy) {
		for i := range p.Statement {
			if slices.Contains(p.Statement[i].Action, action) {
				change(&p.Statement[i])
			}
		}
	}
}

// iamAction is the IAM action that authorizes an API call: SQS's batch
// calls have none of their own, and are authorized by their single call's.
func iamAction(call string) string {
	if batched, ok := strings.CutSuffix(call, "Batch"); ok && strings.HasPrefix(call, "sqs:") {
		return batched
	}
	return call
}

// The policy must allow every AWS call in internal/cloud/interfaces.go, and
// nothing else but the permissions those calls imply.
func TestIAMPolicyMatchesInterfaces(t *testing.T) {
	services := map[string]string{
		"InstancesAPI": "ec2", "VolumesAPI": "ec2", "OfferingsAPI": "ec2",
		"SecurityGroupsAPI": "ec2", "SSMAPI": "ssm", "QueueAPI": "sqs", "RulesAPI": "events",
		"PricingAPI": "pricing",
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Clean(interfacesPath), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	called := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		it, ok := ts.Type.(*ast.InterfaceType)
		if !ok {
			return false
		}
		service, known := services[ts.Name.Name]
		for _, m := range it.Methods.List {
			if len(m.Names) == 0 {
				continue // an embedded interface
			}
			if !known {
				t.Errorf("interface %s in %s has methods but no IAM service in this test", ts.Name.Name, interfacesPath)
				continue
			}
			for _, name := range m.Names {
				called[iamAction(service+":"+name.Name)] = true
			}
		}
		return false
	})
	if len(called) < 15 {
		t.Fatalf("found only %d AWS calls in %s", len(called), interfacesPath)
	}

	allowed := map[string]bool{}
	for _, s := range loadPolicy(t, policyPath).Statement {
		for _, a := range s.Action {
			allowed[a] = true
		}
	}
	for a := range called {
		if !allowed[a] {
			t.Errorf("the operator calls %s, which docs/iam-policy.json does not allow", a)
		}
	}
	// Allowed without a call of their own: tagging on create, passing the
	// instance role, and the tags CreateQueue and PutRule send.
	implied := map[string]bool{"ec2:CreateTags": true, "iam:PassRole": true, "sqs:TagQueue": true, "events:TagResource": true}
	for a := range allowed {
		if !called[a] && !implied[a] {
			t.Errorf("docs/iam-policy.json allows %s, which the operator never calls", a)
		}
	}
}
