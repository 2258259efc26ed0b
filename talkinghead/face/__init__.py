"""Face analysis: landmarks and blendshapes (landmarker), head pose, video tracking, the expression
basis and scale-free measurements. Images and videos in, arrays out; nothing here knows about motion
sources or rendering."""
