// Package phases holds the allowed phase changes of XDrive and Workstation,
// each with its reason. Every phase change of a controller goes through
// Table.Allows; a change missing here is a bug, reported as a Warning Event
// and a metric (and it fails a simulation seed). docs/design.md's state
// diagrams are rendered from these tables (TestDesignDiagrams; `make diagrams`).
package phases

import (
	"fmt"
	"strings"
)

// Change is one allowed phase change and why it happens. An empty From is
// the object's creation, an empty To its removal (the diagram's [*]).
type Change[P ~string] struct {
	From, To P
	Why      string
}

// Table is a kind's allowed phase changes, in the order the diagram draws them.
type Table[P ~string] struct {
	Kind    string
	Changes []Change[P]
}

// Allows reports whether the phase may change from one phase to the other;
// staying in a phase is always allowed.
func (t Table[P]) Allows(from, to P) bool {
	if from == to {
		return true
	}
	for _, c := range t.Changes {
		if c.From == from && c.To == to {
			return true
		}
	}
	return false
}

// Why is the table's reason for the change, "" for none (or staying).
func (t Table[P]) Why(from, to P) string {
	for _, c := range t.Changes {
		if c.From == from && c.To == to {
			return c.Why
		}
	}
	return ""
}

// Phases lists every phase the table names, creation and removal left out.
func (t Table[P]) Phases() []P {
	var out []P
	seen := map[P]bool{"": true}
	for _, c := range t.Changes {
		for _, p := range []P{c.From, c.To} {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// Mermaid renders the table as a mermaid state diagram, as docs/design.md shows it.
func (t Table[P]) Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	for _, c := range t.Changes {
		fmt.Fprintf(&b, "    %s --> %s", node(c.From), node(c.To))
		if c.Why != "" {
			b.WriteString(": " + strings.ReplaceAll(c.Why, "\n", `\n`))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func node[P ~string](p P) string {
	if p == "" {
		return "[*]"
	}
	return string(p)
}
