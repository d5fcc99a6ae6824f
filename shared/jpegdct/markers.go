package jpegdct

// JPEG markers (ITU T.81, table B.1), named as image/jpeg names them. In
// the stream each follows a 0xFF byte.
const (
	sof0Marker  = 0xc0 // Start Of Frame (Baseline Sequential).
	sof1Marker  = 0xc1 // Start Of Frame (Extended Sequential).
	sof2Marker  = 0xc2 // Start Of Frame (Progressive).
	sof3Marker  = 0xc3 // Start Of Frame (Lossless): the first of the frames refused.
	dhtMarker   = 0xc4 // Define Huffman Table.
	jpgMarker   = 0xc8 // reserved for JPEG extensions: skipped.
	dacMarker   = 0xcc // Define Arithmetic Coding conditioning.
	sof15Marker = 0xcf // Start Of Frame (Lossless, arithmetic): the last.
	rst0Marker  = 0xd0 // ReSTart (0).
	rst7Marker  = 0xd7 // ReSTart (7).
	soiMarker   = 0xd8 // Start Of Image.
	eoiMarker   = 0xd9 // End Of Image.
	sosMarker   = 0xda // Start Of Scan.
	dqtMarker   = 0xdb // Define Quantization Table.
	driMarker   = 0xdd // Define Restart Interval.
	temMarker   = 0x01 // TEMporary private use in arithmetic coding: no length.
	// "APPlication specific" markers: JFIF, EXIF, ICC profile, Adobe.
	app0Marker  = 0xe0
	app1Marker  = 0xe1
	app2Marker  = 0xe2
	app14Marker = 0xee
)

// isRST says whether m is one of the eight restart markers.
func isRST(m byte) bool { return m >= rst0Marker && m <= rst7Marker }
