// Package deploy holds packaging files and their tests.
package deploy
