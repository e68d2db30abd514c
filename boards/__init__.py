"""spikelut.boards: board tops, host-link protocol, host runtime and flashing."""
