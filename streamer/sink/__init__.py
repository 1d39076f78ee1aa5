"""streamer.sink"""
