"""streamer.query"""
