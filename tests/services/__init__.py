"""Consumer services written as a team writes them, knowing nothing of the tuner: each runs as
a script in its own interpreter, with the bootstrap injected by `tuner.consumer.service`."""
