// Package greet builds greetings.
package greet

import "strings"

// Hello greets name, title-cased.
func Hello(name string) string {
	if name == "" {
		return "Hello!"
	}
	return "Hello, " + strings.ToUpper(name[:1]) + name[1:] + "!"
}
