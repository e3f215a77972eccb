"""Who is calling: an IT system's client certificates (and when they expire), its
pick-up SSH keys, and the API's tokens; parsed and checked here, stored in the store."""
