"""streamer.sim"""
