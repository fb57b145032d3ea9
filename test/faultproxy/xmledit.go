package faultproxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"sort"
	"strings"
)

// element is the byte span of one XML element and its direct text.
type element struct {
	name       string
	start, end int64
	text       string
}

// item is an element with its descendants, keyed by their path relative to
// it ("instanceState/name"); the first occurrence of a path wins.
type item struct {
	element
	fields map[string]element
}

func (it item) field(path string) string { return it.fields[path].text }

// set returns edits that replace the text of the given fields (path, value
// pairs); fields the item lacks are left alone.
func (it item) set(pathValues ...string) []edit {
	var edits []edit
	for i := 0; i+1 < len(pathValues); i += 2 {
		if el, ok := it.fields[pathValues[i]]; ok {
			edits = append(edits, edit{el.start, el.end, leafXML(el.name, pathValues[i+1])})
		}
	}
	return edits
}

// edit replaces doc[start:end] with text.
type edit struct {
	start, end int64
	text       string
}

// findItems returns every element of doc at path, a slash-separated list of
// local names from the root ("DescribeVolumesResponse/volumeSet/item").
func findItems(doc []byte, path string) ([]item, error) {
	type frame struct {
		name  string
		start int64
		text  strings.Builder
	}
	var (
		items     []item
		stack     []*frame
		names     []string
		cur       *item
		itemDepth int
	)
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		before := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, &frame{name: t.Name.Local, start: before})
			names = append(names, t.Name.Local)
			if cur == nil && strings.Join(names, "/") == path {
				cur, itemDepth = &item{fields: map[string]element{}}, len(names)
			}
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		case xml.EndElement:
			f := stack[len(stack)-1]
			el := element{name: f.name, start: f.start, end: d.InputOffset(), text: f.text.String()}
			if cur != nil {
				if len(names) == itemDepth {
					cur.element = el
					items = append(items, *cur)
					cur = nil
				} else if rel := strings.Join(names[itemDepth:], "/"); cur.fields[rel].name == "" {
					cur.fields[rel] = el
				}
			}
			stack, names = stack[:len(stack)-1], names[:len(names)-1]
		}
	}
}

// rewriteItems edits every item at path with change; a document that does
// not parse is returned unchanged.
func rewriteItems(doc []byte, path string, change func(item) []edit) []byte {
	items, err := findItems(doc, path)
	if err != nil {
		return doc
	}
	var edits []edit
	for _, it := range items {
		edits = append(edits, change(it)...)
	}
	return applyEdits(doc, edits)
}

// applyEdits applies non-overlapping edits and keeps every other byte.
func applyEdits(doc []byte, edits []edit) []byte {
	if len(edits) == 0 {
		return doc
	}
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	var at int64
	for _, e := range edits {
		out.Write(doc[at:e.start])
		out.WriteString(e.text)
		at = e.end
	}
	out.Write(doc[at:])
	return out.Bytes()
}

// leafXML renders <name>value</name> with value escaped.
func leafXML(name, value string) string {
	var b strings.Builder
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(&b, []byte(value))
	b.WriteString("</" + name + ">")
	return b.String()
}
