"""streamer.producer"""
