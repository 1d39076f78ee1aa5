"""`streamer dev`: every part of the pipeline on one machine, with live progress."""
