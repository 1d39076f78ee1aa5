"""streamer.ace"""
