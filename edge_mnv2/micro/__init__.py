"""Microcontroller path: C generation, firmware, flashing and the serial link to the board."""
