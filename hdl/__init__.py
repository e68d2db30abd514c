"""spikelut.hdl: gateware components only (Amaranth 0.5); no CLI, no host code."""
