"""streamer.processor"""
