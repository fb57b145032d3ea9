package fakeec2

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxFilterValues is the most values EC2 takes in one filter.
const maxFilterValues = 200

// schema is the set of filters one DescribeX call supports.
type schema[T any] struct {
	fields map[string]func(*T) []string
	tags   func(*T) map[string]string // nil: no tag filters
}

// filter returns the items that match every filter (values within one filter OR).
// An unsupported filter name fails, so no caller relies on one silently.
func (s schema[T]) filter(items []*T, filters []ec2types.Filter) ([]*T, error) {
	for _, fl := range filters {
		name := aws.ToString(fl.Name)
		switch {
		case len(fl.Values) == 0:
			return nil, apiError(codeInvalidValue, "The filter '%s' has no values", name)
		case len(fl.Values) > maxFilterValues:
			return nil, apiError(codeFilterLimit, "The filter '%s' has more than %d values", name, maxFilterValues)
		case s.fields[name] == nil && (s.tags == nil || name != "tag-key" && !strings.HasPrefix(name, "tag:")):
			return nil, apiError(codeInvalidValue, "The filter '%s' is invalid", name)
		}
	}
	var out []*T
	for _, it := range items {
		if s.matches(it, filters) {
			out = append(out, it)
		}
	}
	return out, nil
}

func (s schema[T]) matches(it *T, filters []ec2types.Filter) bool {
	for _, fl := range filters {
		have := s.values(it, aws.ToString(fl.Name))
		if !slices.ContainsFunc(fl.Values, func(pattern string) bool {
			return slices.ContainsFunc(have, func(v string) bool { return globMatch(pattern, v) })
		}) {
			return false
		}
	}
	return true
}

func (s schema[T]) values(it *T, name string) []string {
	if field := s.fields[name]; field != nil {
		return field(it)
	}
	tags := s.tags(it)
	if name == "tag-key" {
		return slices.Sorted(maps.Keys(tags))
	}
	if v, ok := tags[strings.TrimPrefix(name, "tag:")]; ok {
		return []string{v}
	}
	return nil
}

// globMatch matches EC2 filter values, where * and ? are wildcards.
func globMatch(pattern, value string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == value
	}
	expr := regexp.QuoteMeta(pattern)
	expr = strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(expr)
	return regexp.MustCompile("^" + expr + "$").MatchString(value)
}

func one(s string) []string { return []string{s} }
